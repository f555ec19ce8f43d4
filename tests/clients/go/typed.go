package main

// typed: CRUD through client-go's generated clientset, the most common way Go code talks to an
// API server: Namespaces, ConfigMaps, Deployments (with the status subresource), Leases, in JSON
// and in protobuf, with the error classification (Conflict, NotFound, Invalid) callers rely on.

import (
	"context"
	"fmt"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

func names[T metav1.Object](items []T) []string {
	out := make([]string, 0, len(items))
	for _, item := range items {
		out = append(out, item.GetName())
	}
	sort.Strings(out)
	return out
}

func ptrs[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

func configMap(ns, name string, labels, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}, Data: data}
}

func deployment(ns, name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"tier": "web"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{
					{Name: "app", Image: "nginx:1.25"},
					{Name: "sidecar", Image: "busybox:1.36", Command: []string{"sleep", "infinity"}},
				}},
			},
		},
	}
}

func containerImages(d *appsv1.Deployment) map[string]string {
	out := map[string]string{}
	for _, c := range d.Spec.Template.Spec.Containers {
		out[c.Name] = c.Image
	}
	return out
}

func runTyped(ctx context.Context, cfg *rest.Config) {
	cs, err := kubernetes.NewForConfig(cfg)
	must("setup", err, "clientset")
	ns := "cg-typed-" + suffix()

	// Namespace.
	created, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"kapi-client-go": "typed"}},
	}, metav1.CreateOptions{})
	must("namespace-create", err, "create namespace "+ns)
	expect("namespace-create", created.UID != "" && created.ResourceVersion != "" && !created.CreationTimestamp.IsZero(),
		"created namespace lacks uid/resourceVersion/creationTimestamp: %+v", created.ObjectMeta)
	expect("namespace-create", created.Status.Phase == corev1.NamespaceActive, "namespace phase %q, want Active", created.Status.Phase)
	pass("namespace-create", "namespace %s uid=%s phase=%s", ns, created.UID, created.Status.Phase)

	// ConfigMaps: create, get, list by label selector.
	cms := cs.CoreV1().ConfigMaps(ns)
	for _, c := range []struct{ name, app, tier string }{{"cm-a", "a", "front"}, {"cm-b", "b", "front"}, {"cm-c", "c", "back"}} {
		_, err := cms.Create(ctx, configMap(ns, c.name, map[string]string{"app": c.app, "tier": c.tier},
			map[string]string{"key": "value-" + c.app, "other": "x"}), metav1.CreateOptions{})
		must("configmap-create", err, "create configmap "+c.name)
	}
	_, err = cms.Create(ctx, configMap(ns, "cm-a", nil, nil), metav1.CreateOptions{})
	expect("configmap-create", apierrors.IsAlreadyExists(err), "creating cm-a twice: want AlreadyExists, got %v", err)
	pass("configmap-create", "3 configmaps created; a duplicate create is AlreadyExists")

	got, err := cms.Get(ctx, "cm-a", metav1.GetOptions{})
	must("configmap-get", err, "get cm-a")
	expect("configmap-get", got.Data["key"] == "value-a" && got.Labels["tier"] == "front", "cm-a read back wrong: %+v", got)
	pass("configmap-get", "cm-a data and labels read back (resourceVersion %s)", got.ResourceVersion)

	list, err := cms.List(ctx, metav1.ListOptions{LabelSelector: "tier=front"})
	must("configmap-list-selector", err, "list tier=front")
	expect("configmap-list-selector", fmt.Sprint(names(ptrs(list.Items))) == "[cm-a cm-b]", "tier=front listed %v", names(ptrs(list.Items)))
	expect("configmap-list-selector", list.ResourceVersion != "", "list has no resourceVersion")
	list, err = cms.List(ctx, metav1.ListOptions{LabelSelector: "app in (a,c),tier!=front"})
	must("configmap-list-selector", err, "list set-based selector")
	expect("configmap-list-selector", fmt.Sprint(names(ptrs(list.Items))) == "[cm-c]", "'app in (a,c),tier!=front' listed %v", names(ptrs(list.Items)))
	pass("configmap-list-selector", "equality and set-based label selectors select the right configmaps")

	// Update, then an update carrying the stale resourceVersion must be a Conflict.
	stale := got.DeepCopy()
	got.Data["key"] = "updated"
	updated, err := cms.Update(ctx, got, metav1.UpdateOptions{})
	must("configmap-update", err, "update cm-a")
	expect("configmap-update", updated.Data["key"] == "updated" && updated.ResourceVersion != stale.ResourceVersion,
		"update did not take or kept resourceVersion %s", updated.ResourceVersion)
	pass("configmap-update", "cm-a updated, resourceVersion %s -> %s", stale.ResourceVersion, updated.ResourceVersion)
	stale.Data["key"] = "lost update"
	_, err = cms.Update(ctx, stale, metav1.UpdateOptions{})
	expect("update-conflict", apierrors.IsConflict(err), "update with stale resourceVersion %s: want Conflict, got %v", stale.ResourceVersion, err)
	pass("update-conflict", "stale resourceVersion update rejected: %v", err)

	// JSON merge patch: null removes a key; RFC 6902 JSON patch with a passing and a failing test op.
	patched, err := cms.Patch(ctx, "cm-a", types.MergePatchType, []byte(`{"data":{"other":null,"added":"yes"}}`), metav1.PatchOptions{})
	must("configmap-merge-patch", err, "merge patch cm-a")
	_, hasOther := patched.Data["other"]
	expect("configmap-merge-patch", !hasOther && patched.Data["added"] == "yes" && patched.Data["key"] == "updated",
		"merge patch result wrong: %v", patched.Data)
	pass("configmap-merge-patch", "JSON merge patch removed a key (null) and added one: %v", patched.Data)
	patched, err = cms.Patch(ctx, "cm-a", types.JSONPatchType,
		[]byte(`[{"op":"test","path":"/data/added","value":"yes"},{"op":"replace","path":"/data/added","value":"again"}]`), metav1.PatchOptions{})
	must("configmap-json-patch", err, "json patch cm-a")
	expect("configmap-json-patch", patched.Data["added"] == "again", "json patch result wrong: %v", patched.Data)
	_, err = cms.Patch(ctx, "cm-a", types.JSONPatchType, []byte(`[{"op":"test","path":"/data/added","value":"nope"}]`), metav1.PatchOptions{})
	expect("configmap-json-patch", err != nil && (apierrors.IsInvalid(err) || apierrors.IsConflict(err) || apierrors.IsBadRequest(err)),
		"a failing JSON patch test op must be rejected, got %v", err)
	pass("configmap-json-patch", "RFC 6902 patch applied; a failing test op is rejected (%s)", apierrors.ReasonForError(err))

	// Deployment: create, strategic merge patch (containers merge by name), status subresource.
	deps := cs.AppsV1().Deployments(ns)
	dep, err := deps.Create(ctx, deployment(ns, "web"), metav1.CreateOptions{})
	must("deployment-create", err, "create deployment")
	expect("deployment-create", dep.Generation == 1, "new deployment generation %d, want 1", dep.Generation)
	expect("deployment-create", dep.Spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType && dep.Spec.RevisionHistoryLimit != nil,
		"apps/v1 defaults not applied: strategy=%q revisionHistoryLimit=%v", dep.Spec.Strategy.Type, dep.Spec.RevisionHistoryLimit)
	pass("deployment-create", "deployment web created with generation 1 and apps/v1 defaults (strategy %s)", dep.Spec.Strategy.Type)

	dep, err = deps.Patch(ctx, "web", types.StrategicMergePatchType,
		[]byte(`{"spec":{"replicas":3,"template":{"spec":{"containers":[{"name":"app","image":"nginx:1.27"}]}}}}`), metav1.PatchOptions{})
	must("deployment-strategic-patch", err, "strategic merge patch")
	images := containerImages(dep)
	expect("deployment-strategic-patch", len(images) == 2 && images["app"] == "nginx:1.27" && images["sidecar"] == "busybox:1.36",
		"strategic merge must merge containers by name, got %v", images)
	expect("deployment-strategic-patch", *dep.Spec.Replicas == 3 && dep.Generation == 2, "replicas=%d generation=%d, want 3 and 2", *dep.Spec.Replicas, dep.Generation)
	pass("deployment-strategic-patch", "containers merged by name %v; generation 2", images)

	dep, err = deps.Patch(ctx, "web", types.MergePatchType, []byte(`{"metadata":{"labels":{"tier":null,"team":"blue"}}}`), metav1.PatchOptions{})
	must("deployment-merge-patch", err, "JSON merge patch deployment labels")
	expect("deployment-merge-patch", dep.Labels["team"] == "blue" && dep.Labels["tier"] == "" && dep.Generation == 2,
		"merge patch of labels: labels=%v generation=%d (metadata changes must not bump generation)", dep.Labels, dep.Generation)
	pass("deployment-merge-patch", "labels now %v; generation unchanged", dep.Labels)

	dep.Status = appsv1.DeploymentStatus{
		ObservedGeneration: dep.Generation, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
			Reason: "MinimumReplicasAvailable", LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
	}
	dep.Spec.Replicas = ptr.To[int32](7) // must be ignored by the status subresource
	withStatus, err := deps.UpdateStatus(ctx, dep, metav1.UpdateOptions{})
	must("deployment-update-status", err, "update status")
	expect("deployment-update-status", withStatus.Status.ReadyReplicas == 3 && withStatus.Status.ObservedGeneration == 2 &&
		len(withStatus.Status.Conditions) == 1, "status not stored: %+v", withStatus.Status)
	expect("deployment-update-status", *withStatus.Spec.Replicas == 3 && withStatus.Generation == 2,
		"status update changed spec or generation: replicas=%d generation=%d", *withStatus.Spec.Replicas, withStatus.Generation)
	fresh, err := deps.Get(ctx, "web", metav1.GetOptions{})
	must("deployment-update-status", err, "get after status update")
	expect("deployment-update-status", fresh.Status.AvailableReplicas == 3, "status lost on read: %+v", fresh.Status)
	pass("deployment-update-status", "status written through /status; spec change in the same request ignored")

	fresh.Status.ReadyReplicas = 0 // must be ignored by the main resource
	fresh.Spec.Template.Spec.Containers[1].Image = "busybox:1.37"
	afterMain, err := deps.Update(ctx, fresh, metav1.UpdateOptions{})
	must("deployment-update-ignores-status", err, "update deployment")
	expect("deployment-update-ignores-status", afterMain.Status.ReadyReplicas == 3 && afterMain.Generation == 3,
		"PUT on the main resource must ignore status and bump generation: readyReplicas=%d generation=%d",
		afterMain.Status.ReadyReplicas, afterMain.Generation)
	pass("deployment-update-ignores-status", "PUT on the deployment kept the status and bumped generation to 3")

	// Lease: MicroTime fields must round-trip with microsecond precision.
	leases := cs.CoordinationV1().Leases(ns)
	renew := metav1.NewMicroTime(time.Now().Truncate(time.Microsecond))
	lease, err := leases.Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "lock"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("me"), LeaseDurationSeconds: ptr.To[int32](15),
			AcquireTime: &renew, RenewTime: &renew},
	}, metav1.CreateOptions{})
	must("lease", err, "create lease")
	lease, err = leases.Get(ctx, "lock", metav1.GetOptions{})
	must("lease", err, "get lease")
	expect("lease", lease.Spec.RenewTime != nil && lease.Spec.RenewTime.Equal(&renew),
		"renewTime did not round-trip at microsecond precision: sent %s, got %v", renew.Format(time.RFC3339Nano), lease.Spec.RenewTime)
	later := metav1.NewMicroTime(renew.Add(1500 * time.Microsecond))
	lease.Spec.RenewTime = &later
	lease.Spec.HolderIdentity = ptr.To("you")
	lease, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	must("lease", err, "update lease")
	expect("lease", *lease.Spec.HolderIdentity == "you" && lease.Spec.RenewTime.Equal(&later), "lease update wrong: %+v", lease.Spec)
	must("lease", leases.Delete(ctx, "lock", metav1.DeleteOptions{}), "delete lease")
	_, err = leases.Get(ctx, "lock", metav1.GetOptions{})
	expect("lease", apierrors.IsNotFound(err), "deleted lease: want NotFound, got %v", err)
	pass("lease", "lease created, renewTime kept microseconds (%s), updated, deleted", renew.Format("15:04:05.000000"))

	// Protobuf: what kube-controller-manager and most controllers actually send and accept.
	pcfg := rest.CopyConfig(cfg)
	pcfg.ContentType = runtime.ContentTypeProtobuf
	pcfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	pcs, err := kubernetes.NewForConfig(pcfg)
	must("protobuf", err, "protobuf clientset")
	pcm, err := pcs.CoreV1().ConfigMaps(ns).Create(ctx, configMap(ns, "cm-proto", map[string]string{"tier": "proto"},
		map[string]string{"bytes": "ünïcode ✓"}), metav1.CreateOptions{})
	must("protobuf", err, "create configmap in protobuf")
	expect("protobuf", pcm.Data["bytes"] == "ünïcode ✓" && pcm.UID != "", "protobuf create answer wrong: %+v", pcm)
	pdeps, err := pcs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	must("protobuf", err, "list deployments in protobuf")
	expect("protobuf", len(pdeps.Items) == 1 && containerImages(&pdeps.Items[0])["app"] == "nginx:1.27" &&
		pdeps.Items[0].Status.ReadyReplicas == 3, "protobuf list wrong: %+v", pdeps.Items)
	pcm.Data["more"] = "yes"
	pcm, err = pcs.CoreV1().ConfigMaps(ns).Update(ctx, pcm, metav1.UpdateOptions{})
	must("protobuf", err, "update configmap in protobuf")
	expect("protobuf", pcm.Data["more"] == "yes", "protobuf update lost data: %v", pcm.Data)
	must("protobuf", pcs.CoreV1().ConfigMaps(ns).Delete(ctx, "cm-proto", metav1.DeleteOptions{}), "delete configmap in protobuf (DeleteOptions body)")
	_, err = pcs.CoreV1().ConfigMaps(ns).Get(ctx, "cm-proto", metav1.GetOptions{})
	expect("protobuf", apierrors.IsNotFound(err), "protobuf-deleted configmap: want NotFound, got %v", err)
	must("protobuf", pcs.CoreV1().ConfigMaps(ns).DeleteCollection(ctx, metav1.DeleteOptions{},
		metav1.ListOptions{LabelSelector: "tier=none"}), "deletecollection in protobuf")
	pass("protobuf", "create, list, update, delete with Content-Type application/vnd.kubernetes.protobuf")

	// Delete and NotFound.
	must("delete", cms.Delete(ctx, "cm-b", metav1.DeleteOptions{}), "delete cm-b")
	_, err = cms.Get(ctx, "cm-b", metav1.GetOptions{})
	expect("delete", apierrors.IsNotFound(err), "get deleted cm-b: want NotFound, got %v", err)
	err = cms.Delete(ctx, "cm-b", metav1.DeleteOptions{})
	expect("delete", apierrors.IsNotFound(err), "delete cm-b twice: want NotFound, got %v", err)
	must("delete", deps.Delete(ctx, "web", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}), "delete deployment")
	_, err = deps.Get(ctx, "web", metav1.GetOptions{})
	expect("delete", apierrors.IsNotFound(err), "get deleted deployment: want NotFound, got %v", err)
	pass("delete", "deleted configmap and deployment are NotFound (%v)", err)

	must("delete-collection", cms.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "tier"}), "deletecollection tier")
	list, err = cms.List(ctx, metav1.ListOptions{})
	must("delete-collection", err, "list after deletecollection")
	left := names(ptrs(list.Items))
	for _, name := range left {
		expect("delete-collection", name != "cm-a" && name != "cm-c" && name != "cm-proto", "deletecollection left %v", left)
	}
	pass("delete-collection", "deletecollection with selector 'tier' removed the labelled configmaps (left: %v)", left)

	// Namespace deletion: Terminating, then gone.
	must("namespace-delete", cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}), "delete namespace")
	gone, lastErr := poll(ctx, 30*time.Second, 200*time.Millisecond, func() (bool, error) {
		_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	expect("namespace-delete", gone, "namespace %s still exists 30s after delete (last error %v)", ns, lastErr)
	pass("namespace-delete", "namespace %s is NotFound after delete", ns)
}
