package main

// controller-runtime: a manager and a reconciler (what kubebuilder/operator-sdk operators are)
// on a CRD of its own, with unstructured objects: the reconciler adds a finalizer, creates a
// ConfigMap for the object, reports status through the status subresource with
// observedGeneration, and on deletion cleans up and removes the finalizer so the object goes.

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

const gadgetFinalizer = "example.com/cleanup"

// gadgetReconciler drives Gadgets; it records what it did so the program can check the flow.
type gadgetReconciler struct {
	client.Client
	gvk schema.GroupVersionKind

	mu          sync.Mutex
	sawDeleting []string // objects seen with a deletionTimestamp and our finalizer
	cleanedUp   []string // objects whose ConfigMap was deleted
}

func (r *gadgetReconciler) newGadget() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(r.gvk)
	return u
}

func gadgetConfigMap(name string) string { return "gadget-" + name + "-data" }

func (r *gadgetReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	g := r.newGadget()
	if err := r.Get(ctx, req.NamespacedName, g); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !g.GetDeletionTimestamp().IsZero() {
		if !controllerutil.ContainsFinalizer(g, gadgetFinalizer) {
			return reconcile.Result{}, nil
		}
		r.mu.Lock()
		r.sawDeleting = append(r.sawDeleting, g.GetName())
		r.mu.Unlock()
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: gadgetConfigMap(g.GetName()), Namespace: g.GetNamespace()}}
		if err := r.Delete(ctx, cm); err != nil && !apierrors.IsNotFound(err) {
			return reconcile.Result{}, err
		}
		r.mu.Lock()
		r.cleanedUp = append(r.cleanedUp, g.GetName())
		r.mu.Unlock()
		controllerutil.RemoveFinalizer(g, gadgetFinalizer)
		return reconcile.Result{}, r.Update(ctx, g)
	}
	if controllerutil.AddFinalizer(g, gadgetFinalizer) {
		return reconcile.Result{}, r.Update(ctx, g) // the update's event brings us back
	}
	size, _, _ := unstructured.NestedInt64(g.Object, "spec", "size")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: gadgetConfigMap(g.GetName()), Namespace: g.GetNamespace()}}
	if _, err := controllerutil.CreateOrUpdate(ctx, r.Client, cm, func() error {
		cm.Data = map[string]string{"size": fmt.Sprint(size)}
		return nil
	}); err != nil {
		return reconcile.Result{}, err
	}
	observed, _, _ := unstructured.NestedInt64(g.Object, "status", "observedGeneration")
	phase, _, _ := unstructured.NestedString(g.Object, "status", "phase")
	if observed == g.GetGeneration() && phase == "Ready" {
		return reconcile.Result{}, nil
	}
	if err := unstructured.SetNestedMap(g.Object, map[string]any{
		"phase": "Ready", "observedGeneration": g.GetGeneration(), "message": fmt.Sprintf("size %d", size),
	}, "status"); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{}, r.Status().Update(ctx, g)
}

func runControllerRuntime(ctx context.Context, cfg *rest.Config) {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr)))
	cs, err := kubernetes.NewForConfig(cfg)
	must("setup", err, "clientset")
	id := suffix()
	group := "cr" + id + ".example.com"
	ns := "cg-cr-" + id
	createNamespace(ctx, cs, "setup", ns)
	crd := crdFor(group, "gadgets", "Gadget")
	ext := createCRD(ctx, cfg, "setup", crd)
	gvk := schema.GroupVersionKind{Group: group, Version: "v1", Kind: "Gadget"}

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 clientgoscheme.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		LeaderElection:         false,
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
	})
	must("manager", err, "new manager")
	r := &gadgetReconciler{Client: mgr.GetClient(), gvk: gvk}
	must("manager", ctrl.NewControllerManagedBy(mgr).Named("gadget-"+id).For(r.newGadget()).Complete(r), "build controller")
	mgrCtx, stopMgr := context.WithCancel(ctx)
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.Start(mgrCtx) }()
	syncCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	synced := mgr.GetCache().WaitForCacheSync(syncCtx)
	cancel()
	expect("manager", synced, "manager cache did not sync within 20s")
	pass("manager", "manager started (metrics and probes off, no leader election); caches synced")

	// A direct (uncached) client to watch the effects the way an outside observer would.
	direct, err := client.New(cfg, client.Options{Scheme: clientgoscheme.Scheme})
	must("setup", err, "direct client")
	g := &unstructured.Unstructured{}
	g.SetGroupVersionKind(gvk)
	g.SetName("g1")
	g.SetNamespace(ns)
	must("setup", unstructured.SetNestedField(g.Object, int64(2), "spec", "size"), "set size")
	must("reconcile-ready", direct.Create(ctx, g), "create gadget g1")
	key := types.NamespacedName{Namespace: ns, Name: "g1"}

	waitStatus := func(check string, generation int64, size string) *unstructured.Unstructured {
		cur := &unstructured.Unstructured{}
		cur.SetGroupVersionKind(gvk)
		ok, lastErr := poll(ctx, 20*time.Second, 100*time.Millisecond, func() (bool, error) {
			if err := direct.Get(ctx, key, cur); err != nil {
				return false, err
			}
			phase, _, _ := unstructured.NestedString(cur.Object, "status", "phase")
			observed, _, _ := unstructured.NestedInt64(cur.Object, "status", "observedGeneration")
			cm := &corev1.ConfigMap{}
			if err := direct.Get(ctx, types.NamespacedName{Namespace: ns, Name: gadgetConfigMap("g1")}, cm); err != nil {
				return false, err
			}
			return phase == "Ready" && observed == generation && cur.GetGeneration() == generation &&
				controllerutil.ContainsFinalizer(cur, gadgetFinalizer) && cm.Data["size"] == size, nil
		})
		expect(check, ok, "gadget g1 never reached finalizer + status Ready/observedGeneration %d + ConfigMap size=%s within 20s: %v (last error %v)",
			generation, size, cur.Object, lastErr)
		return cur
	}
	cur := waitStatus("reconcile-ready", 1, "2")
	pass("reconcile-ready", "reconciler added finalizer %v, status %v via /status, ConfigMap %s", cur.GetFinalizers(), cur.Object["status"], gadgetConfigMap("g1"))

	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"size":5}}`))
	must("reconcile-generation", direct.Patch(ctx, cur, patch), "patch spec.size")
	cur = waitStatus("reconcile-generation", 2, "5")
	pass("reconcile-generation", "spec change bumped generation to 2; status.observedGeneration followed; ConfigMap updated")

	must("finalize", direct.Delete(ctx, cur), "delete gadget g1")
	gone, lastErr := poll(ctx, 20*time.Second, 100*time.Millisecond, func() (bool, error) {
		err := direct.Get(ctx, key, &unstructured.Unstructured{Object: map[string]any{"apiVersion": gvk.GroupVersion().String(), "kind": "Gadget"}})
		return apierrors.IsNotFound(err), err
	})
	expect("finalize", gone, "gadget g1 still exists 20s after delete (last %v)", lastErr)
	r.mu.Lock()
	saw, cleaned := slices.Clone(r.sawDeleting), slices.Clone(r.cleanedUp)
	r.mu.Unlock()
	expect("finalize", slices.Contains(saw, "g1") && slices.Contains(cleaned, "g1"),
		"reconciler never saw g1 terminating with its finalizer (saw %v, cleaned %v)", saw, cleaned)
	err = direct.Get(ctx, types.NamespacedName{Namespace: ns, Name: gadgetConfigMap("g1")}, &corev1.ConfigMap{})
	expect("finalize", apierrors.IsNotFound(err), "cleanup ConfigMap still there: %v", err)
	pass("finalize", "reconciler saw deletionTimestamp, deleted its ConfigMap, removed the finalizer; g1 is NotFound")

	stopMgr()
	select {
	case err := <-mgrDone:
		must("manager-stop", err, "manager Start returned an error")
	case <-time.After(15 * time.Second):
		fail("manager-stop", "manager did not stop within 15s")
	}
	pass("manager-stop", "manager stopped cleanly")
	deleteCRD(ctx, ext, "cleanup", crd.Name)
	must("cleanup", cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}), "delete namespace")
}
