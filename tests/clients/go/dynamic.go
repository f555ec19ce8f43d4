package main

// dynamic: a CustomResourceDefinition created through the apiextensions clientset, then custom
// objects handled by the dynamic client (what generic tools, Helm-like installers and
// controller-runtime's unstructured client use), discovery and a discovery-backed RESTMapper.

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/utils/ptr"
)

// crdFor builds a namespaced CRD with a structural schema and the status subresource.
func crdFor(group, plural, kind string) *apiextv1.CustomResourceDefinition {
	integer := func(min float64) apiextv1.JSONSchemaProps {
		return apiextv1.JSONSchemaProps{Type: "integer", Minimum: &min}
	}
	return &apiextv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: plural + "." + group},
		Spec: apiextv1.CustomResourceDefinitionSpec{
			Group: group,
			Scope: apiextv1.NamespaceScoped,
			Names: apiextv1.CustomResourceDefinitionNames{
				Plural: plural, Singular: strings.ToLower(kind), Kind: kind, ListKind: kind + "List",
			},
			Versions: []apiextv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Subresources: &apiextv1.CustomResourceSubresources{Status: &apiextv1.CustomResourceSubresourceStatus{}},
				Schema: &apiextv1.CustomResourceValidation{OpenAPIV3Schema: &apiextv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextv1.JSONSchemaProps{
						"spec": {
							Type:     "object",
							Required: []string{"size"},
							Properties: map[string]apiextv1.JSONSchemaProps{
								"size":  integer(1),
								"color": {Type: "string"},
								"tags":  {Type: "array", Items: &apiextv1.JSONSchemaPropsOrArray{Schema: &apiextv1.JSONSchemaProps{Type: "string"}}},
							},
						},
						"status": {
							Type: "object",
							Properties: map[string]apiextv1.JSONSchemaProps{
								"phase":              {Type: "string"},
								"observedGeneration": {Type: "integer", Format: "int64"},
								"message":            {Type: "string"},
							},
						},
					},
				}},
			}},
		},
	}
}

// createCRD creates the CRD and waits until it is Established and its names are accepted.
func createCRD(ctx context.Context, cfg *rest.Config, check string, crd *apiextv1.CustomResourceDefinition) apiextclient.Interface {
	if workarounds[protobufCRDs] {
		cfg = rest.CopyConfig(cfg)
		cfg.ContentType = runtime.ContentTypeJSON // an explicit ContentType turns client-go's protobuf default off
		fmt.Fprintf(os.Stderr, "NOTE: --kapi-workaround %s: the apiextensions clientset sends JSON\n", protobufCRDs)
	}
	ext, err := apiextclient.NewForConfig(cfg)
	must(check, err, "apiextensions clientset")
	_, err = ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{})
	must(check, err, "create CRD "+crd.Name)
	var conditions []apiextv1.CustomResourceDefinitionCondition
	ok, lastErr := poll(ctx, 20*time.Second, 100*time.Millisecond, func() (bool, error) {
		got, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		conditions = got.Status.Conditions
		established, accepted := false, false
		for _, c := range got.Status.Conditions {
			established = established || (c.Type == apiextv1.Established && c.Status == apiextv1.ConditionTrue)
			accepted = accepted || (c.Type == apiextv1.NamesAccepted && c.Status == apiextv1.ConditionTrue)
		}
		return established && accepted && got.Status.AcceptedNames.Kind == crd.Spec.Names.Kind, nil
	})
	expect(check, ok, "CRD %s not Established+NamesAccepted within 20s (conditions %+v, last error %v)", crd.Name, conditions, lastErr)
	return ext
}

// deleteCRD deletes the CRD and waits until it is gone (kube first removes every custom object).
func deleteCRD(ctx context.Context, ext apiextclient.Interface, check, name string) {
	must(check, ext.ApiextensionsV1().CustomResourceDefinitions().Delete(ctx, name, metav1.DeleteOptions{}), "delete CRD "+name)
	gone, lastErr := poll(ctx, 30*time.Second, 100*time.Millisecond, func() (bool, error) {
		_, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})
	expect(check, gone, "CRD %s still there 30s after delete (last %v)", name, lastErr)
}

func createNamespace(ctx context.Context, cs kubernetes.Interface, check, name string) {
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	must(check, err, "create namespace "+name)
}

func widget(apiVersion, name string, spec map[string]any, labels map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": apiVersion, "kind": "Widget",
		"metadata": map[string]any{"name": name, "labels": labels},
		"spec":     spec,
	}}
}

func runDynamic(ctx context.Context, cfg *rest.Config) {
	cs, err := kubernetes.NewForConfig(cfg)
	must("setup", err, "clientset")
	id := suffix()
	group := "dyn" + id + ".example.com"
	ns := "cg-dyn-" + id
	createNamespace(ctx, cs, "setup", ns)

	crd := crdFor(group, "widgets", "Widget")
	crd.Spec.Names.ShortNames = []string{"wdg"}
	ext := createCRD(ctx, cfg, "crd-established", crd)
	pass("crd-established", "CRD %s is Established and NamesAccepted", crd.Name)

	// Discovery sees the new group, its resource and the status subresource.
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	must("discovery", err, "discovery client")
	var found *metav1.APIResource
	var statusFound bool
	ok, lastErr := poll(ctx, 10*time.Second, 200*time.Millisecond, func() (bool, error) {
		groups, resources, err := dc.ServerGroupsAndResources()
		if err != nil {
			return false, err
		}
		if !slices.ContainsFunc(groups, func(g *metav1.APIGroup) bool {
			return g.Name == group && g.PreferredVersion.Version == "v1"
		}) {
			return false, fmt.Errorf("group %s not in ServerGroups", group)
		}
		for _, list := range resources {
			if list.GroupVersion != group+"/v1" {
				continue
			}
			for i := range list.APIResources {
				r := &list.APIResources[i]
				switch r.Name {
				case "widgets":
					found = r
				case "widgets/status":
					statusFound = true
				}
			}
		}
		return found != nil && statusFound, nil
	})
	expect("discovery", ok, "ServerGroupsAndResources never showed %s/v1 widgets and widgets/status (last error %v)", group, lastErr)
	expect("discovery", found.Namespaced && found.Kind == "Widget" && found.SingularName == "widget" &&
		slices.Contains(found.ShortNames, "wdg") && slices.Contains(found.Verbs, "watch") && slices.Contains(found.Verbs, "patch"),
		"widgets APIResource wrong: %+v", *found)
	pass("discovery", "ServerGroupsAndResources lists %s/v1 widgets (namespaced, verbs %v) and widgets/status", group, found.Verbs)

	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	mapping, err := mapper.RESTMapping(schema.GroupKind{Group: group, Kind: "Widget"}, "v1")
	must("restmapper", err, "RESTMapping Widget")
	expect("restmapper", mapping.Resource.Resource == "widgets" && mapping.Scope.Name() == meta.RESTScopeNameNamespace,
		"Widget mapped to %v scope %s", mapping.Resource, mapping.Scope.Name())
	expander := restmapper.NewShortcutExpander(mapper, dc, func(string) {}) // kubectl's short-name resolution
	short, err := expander.ResourceFor(schema.GroupVersionResource{Resource: "wdg"})
	must("restmapper", err, "ResourceFor short name wdg")
	expect("restmapper", short.Group == group, "short name wdg resolved to %v", short)
	pass("restmapper", "discovery RESTMapper maps Kind Widget -> %s; the shortcut expander resolves wdg", mapping.Resource)

	dyn, err := dynamic.NewForConfig(cfg)
	must("setup", err, "dynamic client")
	gvr := schema.GroupVersionResource{Group: group, Version: "v1", Resource: "widgets"}
	widgets := dyn.Resource(gvr).Namespace(ns)
	apiVersion := group + "/v1"

	// Create: unknown fields are pruned; schema violations are Invalid.
	w1, err := widgets.Create(ctx, widget(apiVersion, "w1",
		map[string]any{"size": int64(3), "color": "red", "unknownField": "dropped"}, map[string]any{"shape": "round"}), metav1.CreateOptions{})
	must("cr-create", err, "create w1")
	_, pruned := w1.Object["spec"].(map[string]any)["unknownField"]
	expect("cr-create", !pruned, "unknown field not pruned: %v", w1.Object["spec"])
	expect("cr-create", w1.GetGeneration() == 1 && w1.GetUID() != "", "w1 generation=%d uid=%q", w1.GetGeneration(), w1.GetUID())
	_, err = widgets.Create(ctx, widget(apiVersion, "w2", map[string]any{"size": int64(7)}, map[string]any{"shape": "square"}), metav1.CreateOptions{})
	must("cr-create", err, "create w2")
	_, err = widgets.Create(ctx, widget(apiVersion, "bad", map[string]any{"size": "big"}, nil), metav1.CreateOptions{})
	expect("cr-create", apierrors.IsInvalid(err), "spec.size \"big\" must be Invalid, got %v", err)
	_, err = widgets.Create(ctx, widget(apiVersion, "bad", map[string]any{"size": int64(0)}, nil), metav1.CreateOptions{})
	expect("cr-create", apierrors.IsInvalid(err), "spec.size 0 (minimum 1) must be Invalid, got %v", err)
	_, err = widgets.Create(ctx, widget(apiVersion, "bad", map[string]any{"color": "blue"}, nil), metav1.CreateOptions{})
	expect("cr-create", apierrors.IsInvalid(err), "missing required spec.size must be Invalid, got %v", err)
	pass("cr-create", "widgets created; unknown field pruned; wrong type, minimum and required violations are Invalid")

	got, err := widgets.Get(ctx, "w1", metav1.GetOptions{})
	must("cr-get", err, "get w1")
	size, _, _ := unstructured.NestedInt64(got.Object, "spec", "size")
	expect("cr-get", size == 3 && got.GetLabels()["shape"] == "round", "w1 read back wrong: %v", got.Object)
	pass("cr-get", "w1 read back with spec.size=%d", size)

	list, err := widgets.List(ctx, metav1.ListOptions{LabelSelector: "shape=square"})
	must("cr-list", err, "list shape=square")
	expect("cr-list", len(list.Items) == 1 && list.Items[0].GetName() == "w2", "shape=square listed %d items", len(list.Items))
	all, err := widgets.List(ctx, metav1.ListOptions{})
	must("cr-list", err, "list all")
	expect("cr-list", len(all.Items) == 2 && all.GetKind() == "WidgetList" && all.GetResourceVersion() != "",
		"list: %d items kind %q rv %q", len(all.Items), all.GetKind(), all.GetResourceVersion())
	pass("cr-list", "list (kind WidgetList) and label-selected list are right")

	// A watch from the list's resourceVersion sees the next change.
	w, err := widgets.Watch(ctx, metav1.ListOptions{ResourceVersion: all.GetResourceVersion(), FieldSelector: "metadata.name=w1"})
	must("cr-watch", err, "watch widgets")

	patched, err := widgets.Patch(ctx, "w1", types.MergePatchType, []byte(`{"spec":{"size":5,"tags":["a","b"]}}`), metav1.PatchOptions{})
	must("cr-merge-patch", err, "merge patch w1")
	size, _, _ = unstructured.NestedInt64(patched.Object, "spec", "size")
	tags, _, _ := unstructured.NestedStringSlice(patched.Object, "spec", "tags")
	expect("cr-merge-patch", size == 5 && slices.Equal(tags, []string{"a", "b"}) && patched.GetGeneration() == 2,
		"merge patch result: size=%d tags=%v generation=%d", size, tags, patched.GetGeneration())
	pass("cr-merge-patch", "merge patch set size=5 tags=%v, generation 2", tags)

	select {
	case ev, open := <-w.ResultChan():
		expect("cr-watch", open && ev.Type == watch.Modified, "first watch event %v (open=%v), want MODIFIED", ev.Type, open)
		u, _ := ev.Object.(*unstructured.Unstructured)
		expect("cr-watch", u != nil && u.GetName() == "w1" && u.GetResourceVersion() == patched.GetResourceVersion(),
			"watch event object %v", ev.Object)
	case <-time.After(10 * time.Second):
		fail("cr-watch", "no watch event 10s after patching w1")
	}
	w.Stop()
	pass("cr-watch", "dynamic watch from the list resourceVersion delivered MODIFIED w1")

	patched, err = widgets.Patch(ctx, "w1", types.JSONPatchType, []byte(`[{"op":"replace","path":"/spec/color","value":"blue"},{"op":"add","path":"/spec/tags/-","value":"c"}]`), metav1.PatchOptions{})
	must("cr-json-patch", err, "json patch w1")
	color, _, _ := unstructured.NestedString(patched.Object, "spec", "color")
	tags, _, _ = unstructured.NestedStringSlice(patched.Object, "spec", "tags")
	expect("cr-json-patch", color == "blue" && slices.Equal(tags, []string{"a", "b", "c"}), "json patch result color=%s tags=%v", color, tags)
	pass("cr-json-patch", "JSON patch replaced color and appended a tag")

	// Server-side apply through the dynamic client.
	applied, err := widgets.Apply(ctx, "w3", widget(apiVersion, "w3", map[string]any{"size": int64(2), "color": "green"}, nil),
		metav1.ApplyOptions{FieldManager: "kapi-client-go", Force: true})
	must("cr-apply", err, "server-side apply w3")
	expect("cr-apply", slices.ContainsFunc(applied.GetManagedFields(), func(m metav1.ManagedFieldsEntry) bool {
		return m.Manager == "kapi-client-go" && m.Operation == metav1.ManagedFieldsOperationApply
	}), "managedFields lack the kapi-client-go Apply entry: %+v", applied.GetManagedFields())
	applied, err = widgets.Apply(ctx, "w3", widget(apiVersion, "w3", map[string]any{"size": int64(4)}, nil),
		metav1.ApplyOptions{FieldManager: "kapi-client-go", Force: true})
	must("cr-apply", err, "second apply w3")
	color, hasColor, _ := unstructured.NestedString(applied.Object, "spec", "color")
	size, _, _ = unstructured.NestedInt64(applied.Object, "spec", "size")
	expect("cr-apply", size == 4 && !hasColor, "re-apply without color must remove it: size=%d color=%q", size, color)
	pass("cr-apply", "server-side apply created w3; re-applying without a field removed it")

	// Update conflict with a stale resourceVersion.
	stale := got.DeepCopy()
	stale.Object["spec"].(map[string]any)["color"] = "stale"
	_, err = widgets.Update(ctx, stale, metav1.UpdateOptions{})
	expect("cr-update-conflict", apierrors.IsConflict(err), "update with stale resourceVersion: want Conflict, got %v", err)
	pass("cr-update-conflict", "stale update is a Conflict")

	// Status subresource: /status changes only status; the main resource ignores status.
	cur, err := widgets.Get(ctx, "w1", metav1.GetOptions{})
	must("cr-status", err, "get w1")
	must("cr-status", unstructured.SetNestedMap(cur.Object, map[string]any{"phase": "Ready", "observedGeneration": cur.GetGeneration()}, "status"), "set status")
	must("cr-status", unstructured.SetNestedField(cur.Object, int64(99), "spec", "size"), "set spec.size")
	st, err := widgets.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
	must("cr-status", err, "update status")
	phase, _, _ := unstructured.NestedString(st.Object, "status", "phase")
	size, _, _ = unstructured.NestedInt64(st.Object, "spec", "size")
	expect("cr-status", phase == "Ready" && size == 5 && st.GetGeneration() == cur.GetGeneration(),
		"status update: phase=%q size=%d generation=%d (spec must be ignored, generation unchanged)", phase, size, st.GetGeneration())
	must("cr-status", unstructured.SetNestedField(st.Object, "Broken", "status", "phase"), "set status.phase")
	must("cr-status", unstructured.SetNestedField(st.Object, int64(6), "spec", "size"), "set spec.size")
	main, err := widgets.Update(ctx, st, metav1.UpdateOptions{})
	must("cr-status", err, "update main resource")
	phase, _, _ = unstructured.NestedString(main.Object, "status", "phase")
	expect("cr-status", phase == "Ready" && main.GetGeneration() == st.GetGeneration()+1,
		"PUT on the main resource: status.phase=%q (must stay Ready), generation=%d", phase, main.GetGeneration())
	patchedStatus, err := widgets.Patch(ctx, "w1", types.MergePatchType, []byte(`{"status":{"message":"hi"}}`), metav1.PatchOptions{}, "status")
	must("cr-status", err, "merge patch /status")
	msg, _, _ := unstructured.NestedString(patchedStatus.Object, "status", "message")
	expect("cr-status", msg == "hi", "status patch lost: %v", patchedStatus.Object["status"])
	pass("cr-status", "status subresource: UpdateStatus ignores spec, Update ignores status, patch on /status works")

	// Delete and NotFound.
	must("cr-delete", widgets.Delete(ctx, "w1", metav1.DeleteOptions{}), "delete w1")
	_, err = widgets.Get(ctx, "w1", metav1.GetOptions{})
	expect("cr-delete", apierrors.IsNotFound(err), "get deleted w1: want NotFound, got %v", err)
	must("cr-delete", widgets.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}), "deletecollection widgets")
	all, err = widgets.List(ctx, metav1.ListOptions{})
	must("cr-delete", err, "list after deletecollection")
	expect("cr-delete", len(all.Items) == 0, "%d widgets left after deletecollection", len(all.Items))
	pass("cr-delete", "deleted widget is NotFound; deletecollection emptied the namespace")

	// Deleting the CRD removes the group from discovery.
	_, err = widgets.Create(ctx, widget(apiVersion, "w9", map[string]any{"size": int64(1)}, nil), metav1.CreateOptions{})
	must("crd-delete", err, "create w9")
	deleteCRD(ctx, ext, "crd-delete", crd.Name)
	ok, lastErr = poll(ctx, 10*time.Second, 200*time.Millisecond, func() (bool, error) {
		groups, err := dc.ServerGroups()
		if err != nil {
			return false, err
		}
		return !slices.ContainsFunc(groups.Groups, func(g metav1.APIGroup) bool { return g.Name == group }), nil
	})
	expect("crd-delete", ok, "group %s still discovered after the CRD is gone (last %v)", group, lastErr)
	_, err = widgets.Get(ctx, "w9", metav1.GetOptions{})
	expect("crd-delete", apierrors.IsNotFound(err), "custom object of a deleted CRD: want NotFound, got %v", err)
	must("crd-delete", cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}), "delete namespace")
	pass("crd-delete", "CRD deleted; its group left discovery and its objects are gone")
}
