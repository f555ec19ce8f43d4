import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.ConfigMapList;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.GenericKubernetesResourceBuilder;
import io.fabric8.kubernetes.api.model.GenericKubernetesResourceList;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.ManagedFieldsEntry;
import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.api.model.StatusDetails;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinitionBuilder;
import io.fabric8.kubernetes.api.model.apiextensions.v1.JSONSchemaProps;
import io.fabric8.kubernetes.api.model.apiextensions.v1.JSONSchemaPropsBuilder;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.DeploymentBuilder;
import io.fabric8.kubernetes.api.model.autoscaling.v1.Scale;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.ResourceNotFoundException;
import io.fabric8.kubernetes.client.Watch;
import io.fabric8.kubernetes.client.Watcher;
import io.fabric8.kubernetes.client.WatcherException;
import io.fabric8.kubernetes.client.dsl.MixedOperation;
import io.fabric8.kubernetes.client.dsl.NonNamespaceOperation;
import io.fabric8.kubernetes.client.dsl.Resource;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import io.fabric8.kubernetes.client.informers.ResourceEventHandler;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import java.util.stream.Collectors;

/**
 * Drives kapi with the fabric8 kubernetes-client, the way a Java operator or tool would.
 *
 * <p>Each subcommand prints {@code ok <subcommand>: <check>} per passed check and ends with
 * {@code PASSED <subcommand> (<n> checks)}; the first failed check prints {@code FAIL ...} and exits 1.
 * The client is configured only from $KUBECONFIG, as real programs are, so the test exercises fabric8's own
 * kubeconfig loading, discovery and HTTP client (vert.x 5, the BOM's default).
 */
public final class Main {
    /** Unique per run, so the subcommands can share one server and be re-run against it. */
    private static final String RUN = UUID.randomUUID().toString().substring(0, 8);
    private static final long TIMEOUT_S = 30;

    private static String subcommand = "?";
    private static int passed;

    private Main() {
    }

    public static void main(String[] args) {
        if (args.length != 1) {
            System.err.println("usage: Main crud|watch|informer");
            System.exit(2);
        }
        subcommand = args[0];
        int code = 0;
        // fabric8 watches over WebSocket by default; FABRIC8_WATCH_TRANSPORT=http makes it use plain HTTP watches
        // (chunked newline-delimited events), the other transport kube-apiserver serves.
        Config config = Config.autoConfigure(null);
        boolean websocket = !"http".equals(System.getenv("FABRIC8_WATCH_TRANSPORT"));
        config.setOnlyHttpWatches(!websocket);
        try (KubernetesClient client = new KubernetesClientBuilder().withConfig(config).build()) {
            System.out.println("info " + subcommand + ": server " + client.getMasterUrl() + ", watches over "
                    + (websocket ? "websocket" : "http"));
            switch (subcommand) {
                case "crud" -> crud(client);
                case "watch" -> watch(client);
                case "informer" -> informer(client);
                default -> throw new IllegalArgumentException("unknown subcommand " + subcommand);
            }
            System.out.println("PASSED " + subcommand + " (" + passed + " checks)");
        } catch (Throwable failure) {
            System.out.println("FAIL " + subcommand + ": " + failure);
            failure.printStackTrace(System.err);
            code = 1;
        }
        System.out.flush();
        // vert.x threads must not keep a failed (or passed) run alive.
        System.exit(code);
    }

    // ---------------------------------------------------------------------------------------------- helpers

    private static void ok(String check) {
        passed++;
        System.out.println("ok " + subcommand + ": " + check);
        System.out.flush();
    }

    private static void check(String check, boolean condition, Object detail) {
        if (!condition) {
            throw new AssertionError(check + " -- " + detail);
        }
        ok(check);
    }

    private static void checkEquals(String check, Object expected, Object actual) {
        check(check, Objects.equals(expected, actual), "expected <" + expected + "> but got <" + actual + ">");
    }

    /** Runs an action that must fail with a KubernetesClientException of the given HTTP code. */
    private static KubernetesClientException expectCode(String check, int code, Runnable action) {
        try {
            action.run();
        } catch (KubernetesClientException e) {
            check(check, e.getCode() == code, "expected HTTP " + code + " but got " + e.getCode() + ": " + e.getMessage());
            return e;
        }
        throw new AssertionError(check + " -- expected HTTP " + code + " but the call succeeded");
    }

    private static void waitFor(String what, BooleanSupplier condition, Supplier<Object> detail) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_S);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what + " -- " + detail.get());
            }
            sleep(50);
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", e);
        }
    }

    private static Set<String> names(Collection<? extends HasMetadata> items) {
        return items.stream().map(o -> o.getMetadata().getName()).collect(Collectors.toCollection(TreeSet::new));
    }

    private static Set<String> setOf(String... values) {
        return new TreeSet<>(List.of(values));
    }

    private static Namespace namespace(KubernetesClient client, String name) {
        return client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName(name)
                .addToLabels("kapi-test", "fabric8").addToLabels("run", RUN).endMetadata().build()).create();
    }

    private static ConfigMap configMap(String name, Map<String, String> labels, Map<String, String> data) {
        return new ConfigMapBuilder().withNewMetadata().withName(name).withLabels(labels).endMetadata()
                .withData(data).build();
    }

    private static Map<String, String> labels(ConfigMap cm) {
        return cm.getMetadata().getLabels() == null ? Map.of() : cm.getMetadata().getLabels();
    }

    // ------------------------------------------------------------------------------------------------- crud

    private static void crud(KubernetesClient client) {
        String ns = "f8-crud-" + RUN;
        String ns2 = "f8-crud2-" + RUN;
        Namespace created = namespace(client, ns);
        check("namespace create", ns.equals(created.getMetadata().getName())
                && created.getMetadata().getUid() != null && created.getMetadata().getResourceVersion() != null,
                created.getMetadata());
        namespace(client, ns2);
        Namespace fetched = client.namespaces().withName(ns).get();
        check("namespace get", fetched != null && "fabric8".equals(fetched.getMetadata().getLabels().get("kapi-test")),
                fetched);
        checkEquals("namespace list by label selector", setOf(ns, ns2),
                names(client.namespaces().withLabel("run", RUN).list().getItems()));

        configMaps(client, ns);
        deployment(client, ns);
        secret(client, ns);
        customResources(client, ns);

        client.namespaces().withName(ns2).delete();
        waitFor("namespace " + ns2 + " to be gone", () -> client.namespaces().withName(ns2).get() == null,
                () -> client.namespaces().withName(ns2).get());
        ok("namespace delete then get is null");
        checkEquals("namespace list after delete", setOf(ns),
                names(client.namespaces().withLabel("run", RUN).list().getItems()));
        client.namespaces().withName(ns).delete();
    }

    private static void configMaps(KubernetesClient client, String ns) {
        NonNamespaceOperation<ConfigMap, ConfigMapList, Resource<ConfigMap>> cms = client.configMaps().inNamespace(ns);
        cms.resource(configMap("cm1", Map.of("app", "alpha", "tier", "front"), Map.of("a", "1"))).create();
        cms.resource(configMap("cm2", Map.of("app", "alpha", "tier", "back"), Map.of("a", "1"))).create();
        cms.resource(configMap("cm3", Map.of("app", "beta"), Map.of("a", "1"))).create();
        ok("configmap create x3");
        expectCode("configmap create existing is 409", 409,
                () -> cms.resource(configMap("cm1", Map.of(), Map.of())).create());

        ConfigMap cm1 = cms.withName("cm1").get();
        check("configmap get", cm1 != null && "1".equals(cm1.getData().get("a"))
                && "ConfigMap".equals(cm1.getKind()) && "v1".equals(cm1.getApiVersion()), cm1);
        check("configmap get missing is null", cms.withName("nope").get() == null, "not null");
        try {
            cms.withName("nope").require();
            throw new AssertionError("require() of a missing configmap returned");
        } catch (ResourceNotFoundException e) {
            ok("configmap require missing throws ResourceNotFoundException");
        }

        checkEquals("configmap list withLabel", setOf("cm1", "cm2"), names(cms.withLabel("app", "alpha").list().getItems()));
        checkEquals("configmap list set-based selector", setOf("cm1", "cm3"),
                names(cms.withLabelIn("app", "alpha", "beta").withLabelNotIn("tier", "back").list().getItems()));
        checkEquals("configmap list withoutLabel", setOf("cm3"), names(cms.withoutLabel("app", "alpha").list().getItems()));
        checkEquals("configmap list exists selector", setOf("cm1", "cm2"), names(cms.withLabel("tier").list().getItems()));
        checkEquals("configmap list field selector", setOf("cm2"),
                names(cms.withField("metadata.name", "cm2").list().getItems()));
        ConfigMapList page1 = cms.list(2, null);
        String cont = page1.getMetadata().getContinue();
        check("configmap list paging first page", page1.getItems().size() == 2 && cont != null && !cont.isEmpty(),
                page1.getMetadata());
        ConfigMapList page2 = cms.list(2, cont);
        Set<String> paged = names(page1.getItems());
        paged.addAll(names(page2.getItems()));
        // kube-root-ca.crt may or may not be published into new namespaces; the three made here must all be seen.
        check("configmap list paging second page", paged.containsAll(setOf("cm1", "cm2", "cm3"))
                && (page2.getMetadata().getContinue() == null || page2.getMetadata().getContinue().isEmpty()), paged);

        ConfigMap merged = cms.withName("cm1").patch(PatchContext.of(PatchType.JSON_MERGE),
                "{\"metadata\":{\"labels\":{\"patched\":\"merge\"}},\"data\":{\"b\":\"2\"}}");
        check("configmap JSON merge patch", Map.of("a", "1", "b", "2").equals(merged.getData())
                && "merge".equals(labels(merged).get("patched")), merged);
        ConfigMap jsonPatched = cms.withName("cm1").patch(PatchContext.of(PatchType.JSON),
                "[{\"op\":\"replace\",\"path\":\"/data/a\",\"value\":\"A\"},{\"op\":\"remove\",\"path\":\"/data/b\"}]");
        checkEquals("configmap JSON patch", Map.of("a", "A"), jsonPatched.getData());
        expectCode("configmap JSON patch failing test op is 422", 422, () -> cms.withName("cm1").patch(
                PatchContext.of(PatchType.JSON), "[{\"op\":\"test\",\"path\":\"/data/a\",\"value\":\"wrong\"}]"));
        ConfigMap strategic = cms.withName("cm1").patch(PatchContext.of(PatchType.STRATEGIC_MERGE),
                "{\"data\":{\"s\":\"3\"}}");
        checkEquals("configmap strategic merge patch", Map.of("a", "A", "s", "3"), strategic.getData());

        ConfigMap stale = cms.withName("cm1").get();
        ConfigMap edited = cms.withName("cm1").edit(cm -> new ConfigMapBuilder(cm).addToData("edited", "yes").build());
        check("configmap edit", "yes".equals(edited.getData().get("edited"))
                && !stale.getMetadata().getResourceVersion().equals(edited.getMetadata().getResourceVersion()), edited);
        checkEquals("configmap edit visible on get", "yes", cms.withName("cm1").get().getData().get("edited"));
        ConfigMap updated = cms.resource(new ConfigMapBuilder(edited).addToData("updated", "1").build()).update();
        checkEquals("configmap update with current resourceVersion", "1", updated.getData().get("updated"));
        KubernetesClientException conflict = expectCode("configmap update with stale resourceVersion is 409", 409,
                () -> cms.resource(new ConfigMapBuilder(stale).addToData("lost", "update").build()).update());
        check("409 carries a Conflict status", conflict.getStatus() != null
                && "Conflict".equals(conflict.getStatus().getReason()), conflict.getStatus());
        check("stale update was not applied", !cms.withName("cm1").get().getData().containsKey("lost"), "applied");

        // Server-side apply: create, ownership in managedFields, conflict between managers, forced takeover,
        // and removal of a field its only manager stops applying.
        ConfigMap applied = cms.resource(configMap("cm-ssa", Map.of("owner", "f8"), Map.of("x", "1", "y", "2")))
                .fieldManager("fabric8-kapi").serverSideApply();
        checkEquals("server-side apply creates", Map.of("x", "1", "y", "2"), applied.getData());
        List<ManagedFieldsEntry> managed = applied.getMetadata().getManagedFields();
        check("server-side apply records the field manager", managed != null && managed.stream().anyMatch(
                m -> "fabric8-kapi".equals(m.getManager()) && "Apply".equals(m.getOperation())), managed);
        expectCode("server-side apply conflict with another manager is 409", 409,
                () -> cms.resource(configMap("cm-ssa", Map.of(), Map.of("x", "other")))
                        .fieldManager("someone-else").serverSideApply());
        ConfigMap forced = cms.resource(configMap("cm-ssa", Map.of(), Map.of("x", "other")))
                .fieldManager("someone-else").forceConflicts().serverSideApply();
        checkEquals("server-side apply forceConflicts takes the field", "other", forced.getData().get("x"));
        ConfigMap shrunk = cms.resource(configMap("cm-ssa", Map.of("owner", "f8"), Map.of()))
                .fieldManager("fabric8-kapi").serverSideApply();
        checkEquals("server-side apply drops fields no longer applied", Map.of("x", "other"), shrunk.getData());

        List<StatusDetails> deleted = cms.withName("cm2").delete();
        check("configmap delete", deleted.size() == 1 && "cm2".equals(deleted.get(0).getName()), deleted);
        check("configmap get after delete is null", cms.withName("cm2").get() == null, "still there");
        check("configmap delete missing returns empty", cms.withName("cm2").delete().isEmpty(), "not empty");
        cms.withLabel("app", "beta").delete();
        checkEquals("configmap delete collection by label", setOf("cm1"),
                names(cms.withLabel("app").list().getItems()));
    }

    private static void deployment(KubernetesClient client, String ns) {
        var deployments = client.apps().deployments().inNamespace(ns);
        Deployment d = new DeploymentBuilder()
                .withNewMetadata().withName("web").addToLabels("app", "web").endMetadata()
                .withNewSpec().withReplicas(1)
                .withNewSelector().addToMatchLabels("app", "web").endSelector()
                .withNewTemplate().withNewMetadata().addToLabels("app", "web").endMetadata()
                .withNewSpec().addNewContainer().withName("web").withImage("nginx:1.27")
                .addNewPort().withContainerPort(80).endPort().endContainer().endSpec()
                .endTemplate().endSpec().build();
        Deployment created = deployments.resource(d).create();
        check("deployment create", created.getMetadata().getGeneration() != null
                && created.getMetadata().getGeneration() == 1L, created.getMetadata());
        check("deployment defaults applied (strategy RollingUpdate)", created.getSpec().getStrategy() != null
                && "RollingUpdate".equals(created.getSpec().getStrategy().getType()), created.getSpec().getStrategy());
        checkEquals("deployment list withLabel", setOf("web"), names(deployments.withLabel("app", "web").list().getItems()));

        Deployment smp = deployments.withName("web").patch(PatchContext.of(PatchType.STRATEGIC_MERGE),
                "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"sidecar\",\"image\":\"busybox:1.36\"}]}}}}");
        // kube-apiserver puts list items new in the patch before the server-only ones (no $setElementOrder here).
        checkEquals("deployment strategic merge patch merges containers by name", List.of("sidecar", "web"),
                smp.getSpec().getTemplate().getSpec().getContainers().stream().map(c -> c.getName()).toList());
        check("deployment spec change bumps generation", smp.getMetadata().getGeneration() == 2L, smp.getMetadata());

        Deployment edited = deployments.withName("web").edit(x -> new DeploymentBuilder(x).editSpec()
                .editTemplate().editSpec().editFirstContainer().withImage("nginx:1.28").endContainer().endSpec()
                .endTemplate().endSpec().build());
        checkEquals("deployment edit", "nginx:1.28", edited.getSpec().getTemplate().getSpec().getContainers().get(0).getImage());

        deployments.withName("web").scale(3);
        Scale scale = deployments.withName("web").scale();
        check("deployment scale subresource", scale != null && scale.getSpec().getReplicas() == 3
                && deployments.withName("web").get().getSpec().getReplicas() == 3, scale);

        Deployment applied = deployments.resource(new DeploymentBuilder().withNewMetadata().withName("web").endMetadata()
                .withNewSpec().withReplicas(2).endSpec().build()).fieldManager("fabric8-kapi").forceConflicts()
                .serverSideApply();
        check("deployment server-side apply keeps other fields", applied.getSpec().getReplicas() == 2
                && applied.getSpec().getTemplate().getSpec().getContainers().size() == 2, applied.getSpec());

        deployments.withName("web").withTimeout(TIMEOUT_S, TimeUnit.SECONDS).delete();
        check("deployment delete then get is null", deployments.withName("web").get() == null, "still there");
    }

    private static void secret(KubernetesClient client, String ns) {
        var secrets = client.secrets().inNamespace(ns);
        secrets.resource(new SecretBuilder().withNewMetadata().withName("creds").addToLabels("app", "creds")
                .endMetadata().withType("Opaque").addToStringData("password", "s3cr3t").build()).create();
        Secret got = secrets.withName("creds").get();
        String expected = Base64.getEncoder().encodeToString("s3cr3t".getBytes(StandardCharsets.UTF_8));
        check("secret stringData stored as base64 data", got != null && expected.equals(got.getData().get("password"))
                && (got.getStringData() == null || got.getStringData().isEmpty()), got);
        Secret patched = secrets.withName("creds").patch(PatchContext.of(PatchType.JSON_MERGE),
                "{\"stringData\":{\"user\":\"admin\"}}");
        check("secret merge patch with stringData", patched.getData().containsKey("user")
                && patched.getData().containsKey("password"), patched.getData());
        expectCode("secret type is immutable (422)", 422, () -> secrets.withName("creds")
                .edit(s -> new SecretBuilder(s).withType("kubernetes.io/tls").build()));
        checkEquals("secret list withLabel", setOf("creds"), names(secrets.withLabel("app", "creds").list().getItems()));
        secrets.withName("creds").delete();
        check("secret delete then get is null", secrets.withName("creds").get() == null, "still there");
    }

    private static void customResources(KubernetesClient client, String ns) {
        String group = "f8" + RUN + ".kapi.example.com";
        String crdName = "widgets." + group;
        JSONSchemaProps string = new JSONSchemaPropsBuilder().withType("string").build();
        JSONSchemaProps schema = new JSONSchemaPropsBuilder().withType("object")
                .addToProperties("spec", new JSONSchemaPropsBuilder().withType("object")
                        .addToProperties("size", new JSONSchemaPropsBuilder().withType("integer").withMinimum(0.0).build())
                        .addToProperties("color", string).build())
                .addToProperties("status", new JSONSchemaPropsBuilder().withType("object")
                        .addToProperties("phase", string).build())
                .build();
        CustomResourceDefinition crd = new CustomResourceDefinitionBuilder()
                .withNewMetadata().withName(crdName).endMetadata()
                .withNewSpec().withGroup(group).withScope("Namespaced")
                .withNewNames().withKind("Widget").withListKind("WidgetList").withPlural("widgets")
                .withSingular("widget").endNames()
                .addNewVersion().withName("v1").withServed(true).withStorage(true)
                .withNewSchema().withOpenAPIV3Schema(schema).endSchema()
                .withNewSubresources().withNewStatus().endStatus().endSubresources()
                .endVersion().endSpec().build();
        var crds = client.apiextensions().v1().customResourceDefinitions();
        crds.resource(crd).create();
        ok("crd create (apiextensions v1, status subresource)");
        crds.withName(crdName).waitUntilCondition(c -> c != null && c.getStatus() != null
                && c.getStatus().getConditions() != null && c.getStatus().getConditions().stream().anyMatch(
                        cond -> "Established".equals(cond.getType()) && "True".equals(cond.getStatus())),
                TIMEOUT_S, TimeUnit.SECONDS);
        ok("crd Established");
        check("crd kind discoverable", client.supports(group + "/v1", "Widget"), "client.supports is false");

        MixedOperation<GenericKubernetesResource, GenericKubernetesResourceList, Resource<GenericKubernetesResource>> widgets =
                client.genericKubernetesResources(group + "/v1", "Widget");
        var inNs = widgets.inNamespace(ns);
        GenericKubernetesResource w1 = new GenericKubernetesResourceBuilder().withApiVersion(group + "/v1")
                .withKind("Widget").withNewMetadata().withName("w1").addToLabels("shape", "round").endMetadata()
                .addToAdditionalProperties("spec", Map.of("size", 1, "color", "red", "unknown", "pruned")).build();
        GenericKubernetesResource c1 = inNs.resource(w1).create();
        check("custom resource create", c1.getMetadata().getUid() != null
                && Integer.valueOf(1).equals(((Number) c1.get("spec", "size")).intValue()), c1);
        check("custom resource unknown field pruned", c1.get("spec", "unknown") == null, c1.getAdditionalProperties());
        expectCode("custom resource schema violation is 422", 422, () -> inNs.resource(
                new GenericKubernetesResourceBuilder(w1).editMetadata().withName("bad").endMetadata()
                        .addToAdditionalProperties("spec", Map.of("size", -1)).build()).create());
        GenericKubernetesResource g1 = inNs.withName("w1").get();
        checkEquals("custom resource get", "red", g1 == null ? null : g1.get("spec", "color"));
        checkEquals("custom resource list withLabel", setOf("w1"), names(inNs.withLabel("shape", "round").list().getItems()));
        checkEquals("custom resource list in any namespace", setOf("w1"),
                names(widgets.inAnyNamespace().withLabel("shape", "round").list().getItems()));

        GenericKubernetesResource p = inNs.withName("w1").patch(PatchContext.of(PatchType.JSON_MERGE),
                "{\"spec\":{\"size\":2}}");
        check("custom resource JSON merge patch", ((Number) p.get("spec", "size")).intValue() == 2
                && p.getMetadata().getGeneration() == 2L, p);
        GenericKubernetesResource withStatus = inNs.withName("w1").editStatus(r -> {
            GenericKubernetesResource copy = new GenericKubernetesResourceBuilder(r).build();
            copy.setAdditionalProperty("status", Map.of("phase", "Ready"));
            return copy;
        });
        check("custom resource status subresource update", "Ready".equals(withStatus.get("status", "phase"))
                && withStatus.getMetadata().getGeneration() == 2L, withStatus);
        GenericKubernetesResource ignored = inNs.withName("w1").edit(r -> {
            GenericKubernetesResource copy = new GenericKubernetesResourceBuilder(r).build();
            copy.setAdditionalProperty("status", Map.of("phase", "Hacked"));
            copy.setAdditionalProperty("spec", Map.of("size", 3, "color", "red"));
            return copy;
        });
        check("custom resource main endpoint ignores status", "Ready".equals(ignored.get("status", "phase"))
                && ((Number) ignored.get("spec", "size")).intValue() == 3, ignored);
        GenericKubernetesResource ssa = inNs.resource(new GenericKubernetesResourceBuilder().withApiVersion(group + "/v1")
                .withKind("Widget").withNewMetadata().withName("w2").endMetadata()
                .addToAdditionalProperties("spec", Map.of("size", 7)).build()).fieldManager("fabric8-kapi")
                .serverSideApply();
        checkEquals("custom resource server-side apply", 7, ((Number) ssa.get("spec", "size")).intValue());
        GenericKubernetesResource stale = inNs.withName("w2").get();
        inNs.withName("w2").patch(PatchContext.of(PatchType.JSON_MERGE), "{\"spec\":{\"color\":\"blue\"}}");
        expectCode("custom resource update with stale resourceVersion is 409", 409, () -> inNs.resource(stale).update());

        inNs.withName("w1").delete();
        inNs.withName("w2").delete();
        check("custom resource delete then get is null",
                inNs.withName("w1").get() == null && inNs.withName("w2").get() == null, "still there");
        crds.withName(crdName).delete();
        waitFor("crd deletion", () -> crds.withName(crdName).get() == null, () -> crds.withName(crdName).get());
        ok("crd delete");
    }

    // ------------------------------------------------------------------------------------------------ watch

    /** A watcher that queues what it is given, so the main thread can assert on order. */
    private static final class Recorder implements Watcher<ConfigMap> {
        final BlockingQueue<String> events = new LinkedBlockingQueue<>();
        final CompletableFuture<WatcherException> closed = new CompletableFuture<>();

        @Override
        public void eventReceived(Action action, ConfigMap cm) {
            events.add(action + " " + cm.getMetadata().getName() + " " + cm.getData());
        }

        @Override
        public void onClose() {
            closed.complete(null);
        }

        @Override
        public void onClose(WatcherException cause) {
            closed.complete(cause);
        }

        String next() {
            try {
                String event = events.poll(TIMEOUT_S, TimeUnit.SECONDS);
                if (event == null) {
                    throw new AssertionError("no watch event within " + TIMEOUT_S + "s");
                }
                return event;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted", e);
            }
        }
    }

    private static void watch(KubernetesClient client) throws Exception {
        String ns = "f8-watch-" + RUN;
        namespace(client, ns);
        var cms = client.configMaps().inNamespace(ns);
        cms.resource(configMap("pre", Map.of(), Map.of("v", "0"))).create();

        Recorder recorder = new Recorder();
        try (Watch w = cms.watch(recorder)) {
            checkEquals("watch without resourceVersion starts with the existing object", "ADDED pre {v=0}", recorder.next());
            cms.resource(configMap("w", Map.of(), Map.of("v", "1"))).create();
            cms.withName("w").edit(cm -> new ConfigMapBuilder(cm).addToData("v", "2").build());
            cms.withName("w").delete();
            checkEquals("watch ADDED", "ADDED w {v=1}", recorder.next());
            checkEquals("watch MODIFIED", "MODIFIED w {v=2}", recorder.next());
            checkEquals("watch DELETED", "DELETED w {v=2}", recorder.next());
        }
        check("watch close calls onClose() without error",
                recorder.closed.get(TIMEOUT_S, TimeUnit.SECONDS) == null, "closed with an exception");
        check("no further events after close", recorder.events.isEmpty(), recorder.events);

        // Resume from a known resourceVersion: only what happened after it is delivered.
        String rv = cms.list().getMetadata().getResourceVersion();
        cms.withName("pre").edit(cm -> new ConfigMapBuilder(cm).addToData("v", "resumed").build());
        Recorder resumed = new Recorder();
        try (Watch w = cms.withResourceVersion(rv).watch(resumed)) {
            checkEquals("watch from a resourceVersion replays later events", "MODIFIED pre {v=resumed}", resumed.next());
        }

        // 410 Gone: the server keeps 20 events (--watch-event-window 20); more than that have happened since.
        String oldRv = cms.withName("pre").get().getMetadata().getResourceVersion();
        for (int i = 0; i < 25; i++) {
            final int n = i;
            cms.withName("pre").edit(cm -> new ConfigMapBuilder(cm).addToData("v", "bump" + n).build());
        }
        ok("25 writes made after the old resourceVersion");
        Recorder tooOld = new Recorder();
        Watch gone = cms.withResourceVersion(oldRv).watch(tooOld);
        WatcherException cause = tooOld.closed.get(TIMEOUT_S, TimeUnit.SECONDS);
        gone.close();
        check("watch from a too-old resourceVersion closes with a WatcherException", cause != null, "onClose() without cause");
        check("the WatcherException is HTTP Gone (410)", cause.isHttpGone()
                || cause.asClientException().getCode() == 410, cause + " code=" + cause.asClientException().getCode());
        check("no events delivered from a too-old resourceVersion", tooOld.events.isEmpty(), tooOld.events);

        // The watch-list protocol (sendInitialEvents + initial-events-end bookmark) that streamingList uses.
        List<String> streamed = new ArrayList<>();
        String listRv = cms.streamingList(cm -> streamed.add(cm.getMetadata().getName())).get(TIMEOUT_S, TimeUnit.SECONDS);
        check("streamingList (watch-list) returns the objects and a resourceVersion",
                streamed.equals(List.of("pre")) && listRv != null && !listRv.isEmpty(), streamed + " rv=" + listRv);

        client.namespaces().withName(ns).delete();
    }

    // --------------------------------------------------------------------------------------------- informer

    /** Counts handler calls; resyncs (same resourceVersion on both sides) are counted apart from real updates. */
    private static final class Counter implements ResourceEventHandler<ConfigMap> {
        final AtomicInteger adds = new AtomicInteger();
        final AtomicInteger updates = new AtomicInteger();
        final AtomicInteger resyncs = new AtomicInteger();
        final AtomicInteger deletes = new AtomicInteger();
        final List<String> log = java.util.Collections.synchronizedList(new ArrayList<>());

        @Override
        public void onAdd(ConfigMap cm) {
            adds.incrementAndGet();
            log.add("add " + cm.getMetadata().getName());
        }

        @Override
        public void onUpdate(ConfigMap oldCm, ConfigMap newCm) {
            if (Objects.equals(oldCm.getMetadata().getResourceVersion(), newCm.getMetadata().getResourceVersion())) {
                resyncs.incrementAndGet();
            } else {
                updates.incrementAndGet();
                log.add("update " + newCm.getMetadata().getName());
            }
        }

        @Override
        public void onDelete(ConfigMap cm, boolean finalStateUnknown) {
            deletes.incrementAndGet();
            log.add("delete " + cm.getMetadata().getName() + (finalStateUnknown ? " (final state unknown)" : ""));
        }

        /** What the handler saw, resyncs left out (one may still be dispatched after stop). */
        String changes() {
            return "adds=" + adds + " updates=" + updates + " deletes=" + deletes + " " + log;
        }

        String counts() {
            return "adds=" + adds + " updates=" + updates + " deletes=" + deletes + " resyncs=" + resyncs + " " + log;
        }
    }

    private static void informer(KubernetesClient client) throws Exception {
        String ns = "f8-informer-" + RUN;
        namespace(client, ns);
        var cms = client.configMaps().inNamespace(ns);
        cms.resource(configMap("p1", Map.of("color", "green"), Map.of("v", "0"))).create();
        cms.resource(configMap("p2", Map.of("color", "green"), Map.of("v", "0"))).create();

        Counter counter = new Counter();
        SharedIndexInformer<ConfigMap> informer = cms.runnableInformer(1000L);
        informer.addIndexers(Map.of("byColor", cm -> List.of(labels(cm).getOrDefault("color", ""))));
        informer.addEventHandler(counter);
        informer.start().toCompletableFuture().get(TIMEOUT_S, TimeUnit.SECONDS);
        check("informer started and synced", informer.hasSynced() && informer.isRunning()
                && informer.lastSyncResourceVersion() != null, "synced=" + informer.hasSynced());
        waitFor("2 initial adds", () -> counter.adds.get() == 2, counter::counts);
        ok("informer initial list gives onAdd for existing objects");

        for (int i = 1; i <= 5; i++) {
            cms.resource(configMap("c" + i, Map.of("color", i % 2 == 1 ? "red" : "blue"), Map.of("v", "0"))).create();
        }
        for (String name : List.of("c1", "c2", "c3")) {
            cms.withName(name).patch(PatchContext.of(PatchType.JSON_MERGE), "{\"data\":{\"v\":\"1\"}}");
        }
        for (String name : List.of("c4", "c5", "p1")) {
            cms.withName(name).delete();
        }
        waitFor("handler counts adds=7 updates=3 deletes=3", () -> counter.adds.get() == 7
                && counter.updates.get() == 3 && counter.deletes.get() == 3, counter::counts);
        ok("informer onAdd called 7 times");
        ok("informer onUpdate called 3 times");
        ok("informer onDelete called 3 times");
        Set<String> expected = setOf("c1", "c2", "c3", "p2");
        waitFor("store contents", () -> names(informer.getStore().list()).equals(expected),
                () -> names(informer.getStore().list()));
        checkEquals("informer store holds exactly the live objects", expected, names(informer.getStore().list()));
        ConfigMap cached = informer.getStore().getByKey(ns + "/c1");
        check("informer store has the latest version", cached != null && "1".equals(cached.getData().get("v")), cached);
        checkEquals("informer index byColor", setOf("c1", "c3"), names(informer.getIndexer().byIndex("byColor", "red")));

        int resyncsBefore = counter.resyncs.get();
        waitFor("a resync", () -> counter.resyncs.get() > resyncsBefore, counter::counts);
        ok("informer resync period delivers onUpdate with an unchanged object");
        check("resync adds no real updates", counter.updates.get() == 3 && counter.adds.get() == 7, counter.counts());

        // A label-filtered informer: objects that stop matching its selector must leave its cache.
        Counter redCounter = new Counter();
        SharedIndexInformer<ConfigMap> red = cms.withLabel("color", "red").inform(redCounter, 0);
        checkEquals("label-filtered informer lists only matching objects", setOf("c1", "c3"), names(red.getStore().list()));
        cms.withName("c3").patch(PatchContext.of(PatchType.JSON_MERGE), "{\"metadata\":{\"labels\":{\"color\":\"blue\"}}}");
        // The store changes before the handlers are called (they run on fabric8's own executor): wait for both.
        waitFor("c3 to leave the red informer", () -> names(red.getStore().list()).equals(setOf("c1"))
                && redCounter.deletes.get() >= 1, () -> names(red.getStore().list()) + " " + redCounter.counts());
        checkEquals("object no longer matching the selector is a delete", "1 delete c3",
                redCounter.deletes.get() + " " + redCounter.log.get(redCounter.log.size() - 1));
        red.stop();

        informer.stop();
        informer.stopped().toCompletableFuture().get(TIMEOUT_S, TimeUnit.SECONDS);
        check("informer stopped cleanly", !informer.isRunning() && !informer.isWatching(), "still running");
        String afterStop = counter.changes();
        cms.resource(configMap("c6", Map.of(), Map.of())).create();
        sleep(1500);
        checkEquals("stopped informer gets no more events", afterStop, counter.changes());

        client.namespaces().withName(ns).delete();
    }
}
