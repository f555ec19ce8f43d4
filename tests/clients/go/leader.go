package main

// leader: client-go's leaderelection on a coordination.k8s.io Lease, as every HA controller
// manager runs it: two candidates, exactly one leads, the leader releases on cancel
// (ReleaseOnCancel) and the other takes over within seconds; the Lease records all of it.

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

type candidate struct {
	id       string
	elector  *leaderelection.LeaderElector
	cancel   context.CancelFunc
	done     chan struct{}
	leading  atomic.Bool
	started  chan struct{}
	stopped  chan struct{}
	mu       sync.Mutex
	observed []string // OnNewLeader identities, in order
}

func runLeader(ctx context.Context, cfg *rest.Config) {
	cs, err := kubernetes.NewForConfig(cfg)
	must("setup", err, "clientset")
	id := suffix()
	ns := "cg-leader-" + id
	createNamespace(ctx, cs, "setup", ns)
	leaseName := "election-" + id
	leases := cs.CoordinationV1().Leases(ns)

	const leaseDuration = 4 * time.Second
	candidates := map[string]*candidate{}
	for _, name := range []string{"alpha", "beta"} {
		c := &candidate{id: name, done: make(chan struct{}), started: make(chan struct{}), stopped: make(chan struct{})}
		lock := &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Name: leaseName, Namespace: ns},
			Client:     cs.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: name},
		}
		elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			Name:            name,
			LeaseDuration:   leaseDuration,
			RenewDeadline:   3 * time.Second,
			RetryPeriod:     500 * time.Millisecond,
			ReleaseOnCancel: true,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(context.Context) { c.leading.Store(true); close(c.started) },
				OnStoppedLeading: func() { c.leading.Store(false); close(c.stopped) },
				OnNewLeader: func(identity string) {
					c.mu.Lock()
					c.observed = append(c.observed, identity)
					c.mu.Unlock()
				},
			},
		})
		must("setup", err, "leader elector "+name)
		c.elector = elector
		runCtx, cancel := context.WithCancel(ctx)
		c.cancel = cancel
		candidates[name] = c
		go func() { elector.Run(runCtx); close(c.done) }()
	}

	// Exactly one leads.
	var leader, follower *candidate
	select {
	case <-candidates["alpha"].started:
		leader, follower = candidates["alpha"], candidates["beta"]
	case <-candidates["beta"].started:
		leader, follower = candidates["beta"], candidates["alpha"]
	case <-time.After(15 * time.Second):
		fail("one-leader", "no candidate became leader within 15s")
	}
	time.Sleep(2 * time.Second) // several retry periods: a broken lock would let the other in
	expect("one-leader", leader.leading.Load() && !follower.leading.Load() && !follower.elector.IsLeader(),
		"both or neither lead: %s=%v %s=%v", leader.id, leader.leading.Load(), follower.id, follower.leading.Load())
	expect("one-leader", follower.elector.GetLeader() == leader.id, "%s sees leader %q, want %q", follower.id, follower.elector.GetLeader(), leader.id)
	follower.mu.Lock()
	observed := slices.Clone(follower.observed)
	follower.mu.Unlock()
	expect("one-leader", slices.Contains(observed, leader.id), "%s's OnNewLeader saw %v, not %s", follower.id, observed, leader.id)
	pass("one-leader", "%s leads, %s follows and observes %s as leader", leader.id, follower.id, leader.id)

	lease, err := leases.Get(ctx, leaseName, metav1.GetOptions{})
	must("lease-holder", err, "get lease")
	expect("lease-holder", lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity == leader.id,
		"lease holderIdentity %v, want %s", lease.Spec.HolderIdentity, leader.id)
	expect("lease-holder", lease.Spec.LeaseDurationSeconds != nil && *lease.Spec.LeaseDurationSeconds == int32(leaseDuration.Seconds()),
		"leaseDurationSeconds %v, want %d", lease.Spec.LeaseDurationSeconds, int(leaseDuration.Seconds()))
	expect("lease-holder", lease.Spec.AcquireTime != nil && lease.Spec.RenewTime != nil, "lease lacks acquireTime/renewTime: %+v", lease.Spec)
	firstRenew := lease.Spec.RenewTime.Time
	time.Sleep(1500 * time.Millisecond)
	lease, err = leases.Get(ctx, leaseName, metav1.GetOptions{})
	must("lease-holder", err, "get lease again")
	expect("lease-holder", lease.Spec.RenewTime.After(firstRenew), "renewTime did not advance: %s then %s",
		firstRenew.Format(time.RFC3339Nano), lease.Spec.RenewTime.Format(time.RFC3339Nano))
	pass("lease-holder", "Lease holderIdentity=%s leaseDurationSeconds=%d, renewTime advancing (%s -> %s)", *lease.Spec.HolderIdentity,
		*lease.Spec.LeaseDurationSeconds, firstRenew.Format("15:04:05.000000"), lease.Spec.RenewTime.Format("15:04:05.000000"))
	transitions := int32(0)
	if lease.Spec.LeaseTransitions != nil {
		transitions = *lease.Spec.LeaseTransitions
	}

	// The leader's context is cancelled: it releases the lease, the follower takes over.
	cancelled := time.Now()
	leader.cancel()
	select {
	case <-leader.done:
	case <-time.After(10 * time.Second):
		fail("takeover", "%s's Run did not return within 10s of cancelling its context", leader.id)
	}
	select {
	case <-leader.stopped:
	default:
		fail("takeover", "%s returned without OnStoppedLeading", leader.id)
	}
	select {
	case <-follower.started:
	case <-time.After(leaseDuration + 3*time.Second):
		fail("takeover", "%s did not take over within %s of %s releasing", follower.id, leaseDuration+3*time.Second, leader.id)
	}
	took := time.Since(cancelled)
	lease, err = leases.Get(ctx, leaseName, metav1.GetOptions{})
	must("takeover", err, "get lease after takeover")
	expect("takeover", lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity == follower.id,
		"lease holderIdentity %v after takeover, want %s", lease.Spec.HolderIdentity, follower.id)
	expect("takeover", lease.Spec.LeaseTransitions != nil && *lease.Spec.LeaseTransitions == transitions+1,
		"leaseTransitions %v, want %d", lease.Spec.LeaseTransitions, transitions+1)
	pass("takeover", "%s released on cancel; %s took over in %s; Lease holderIdentity=%s leaseTransitions=%d",
		leader.id, follower.id, took.Round(time.Millisecond), follower.id, *lease.Spec.LeaseTransitions)

	// The new leader releases too: the Lease is left without a holder.
	follower.cancel()
	select {
	case <-follower.done:
	case <-time.After(10 * time.Second):
		fail("release", "%s's Run did not return within 10s", follower.id)
	}
	lease, err = leases.Get(ctx, leaseName, metav1.GetOptions{})
	must("release", err, "get lease after release")
	spec, _ := json.Marshal(lease.Spec)
	expect("release", lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "", "released lease still held: %s", spec)
	// client-go's release writes leaseDurationSeconds=1 so that waiting candidates need not wait a full term.
	expect("release", lease.Spec.LeaseDurationSeconds != nil && *lease.Spec.LeaseDurationSeconds == 1,
		"released lease must carry leaseDurationSeconds=1: %s", spec)
	pass("release", "after both cancelled the Lease has no holder: %s", spec)

	must("cleanup", leases.Delete(ctx, leaseName, metav1.DeleteOptions{}), "delete lease")
	_, err = leases.Get(ctx, leaseName, metav1.GetOptions{})
	expect("cleanup", apierrors.IsNotFound(err), "deleted lease: want NotFound, got %v", err)
	must("cleanup", cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}), "delete namespace")
}
