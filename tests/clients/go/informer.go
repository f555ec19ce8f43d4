package main

// informer: client-go's SharedInformerFactory on ConfigMaps, the machinery under every Go
// controller. Checked: event counts, periodic resync, watches ended by the server and resumed
// from their resourceVersion, and — the hard part — a watch that resumes from a resourceVersion
// older than the server's event window: the server must answer 410 Expired so the reflector
// relists, and the informer's cache must end up exactly right. The scenario runs twice: with the
// streaming watch-list (sendInitialEvents, client-go's default since 1.35) and with the classic
// list-then-watch that older clients use.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// watchGate sits in the informer's HTTP transport. It shortens every ConfigMap watch's
// server-side lifetime (timeoutSeconds) so the server ends watches often and the reflector must
// resume them; it can hold new watch requests back (the "broken" watch) while the test writes
// more than the server's event window; and it counts relists (lists, or watch-lists that ask
// for initial events) versus resumed watches, recording what the server answered a held request.
type watchGate struct {
	watchTimeout string
	relists      atomic.Int32
	resumes      atomic.Int32
	blocked      atomic.Int32

	mu     sync.Mutex
	hold   chan struct{} // non-nil while watches are held back; closed to release them
	held   []*heldAnswer
	events []string // "list rv=X -> 200" style log for failure messages
}

// heldAnswer is what the server answered a watch request that was held back at the gate.
type heldAnswer struct {
	rv     string
	status int
	body   bytes.Buffer // the first bytes of the stream
	mu     sync.Mutex
}

func (h *heldAnswer) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	text := h.body.String()
	if len(text) > 300 {
		text = text[:300] + "..."
	}
	return fmt.Sprintf("watch rv=%s -> HTTP %d %s", h.rv, h.status, strings.TrimSpace(text))
}

// sniffer copies the start of a held watch stream into its heldAnswer.
type sniffer struct {
	io.ReadCloser
	answer *heldAnswer
}

func (s *sniffer) Read(p []byte) (int, error) {
	n, err := s.ReadCloser.Read(p)
	s.answer.mu.Lock()
	if room := 2048 - s.answer.body.Len(); room > 0 {
		s.answer.body.Write(p[:min(n, room)])
	}
	s.answer.mu.Unlock()
	return n, err
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (g *watchGate) log(format string, args ...any) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.events = append(g.events, fmt.Sprintf(format, args...))
}

func (g *watchGate) history() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	tail := g.events
	if len(tail) > 12 {
		tail = tail[len(tail)-12:]
	}
	return strings.Join(tail, "; ")
}

func (g *watchGate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hold = make(chan struct{})
}

func (g *watchGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.hold)
	g.hold = nil
}

func (g *watchGate) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		if req.Method != http.MethodGet || !strings.HasSuffix(req.URL.Path, "/configmaps") {
			return next.RoundTrip(req)
		}
		q := req.URL.Query()
		rv := q.Get("resourceVersion")
		if w := q.Get("watch"); w != "true" && w != "1" {
			g.relists.Add(1)
			resp, err := next.RoundTrip(req)
			if err == nil {
				g.log("list rv=%q -> %d", rv, resp.StatusCode)
			}
			return resp, err
		}
		initial := q.Get("sendInitialEvents") == "true"
		if initial {
			g.relists.Add(1)
		} else {
			g.resumes.Add(1)
		}
		q.Set("timeoutSeconds", g.watchTimeout)
		req = req.Clone(req.Context())
		req.URL.RawQuery = q.Encode()

		g.mu.Lock()
		hold := g.hold
		g.mu.Unlock()
		var answer *heldAnswer
		if hold != nil {
			g.blocked.Add(1)
			select {
			case <-hold:
			case <-req.Context().Done():
				return nil, req.Context().Err()
			}
			answer = &heldAnswer{rv: rv}
			g.mu.Lock()
			g.held = append(g.held, answer)
			g.mu.Unlock()
		}
		resp, err := next.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		g.log("watch rv=%q initialEvents=%v -> %d", rv, initial, resp.StatusCode)
		if answer != nil {
			answer.status = resp.StatusCode
			resp.Body = &sniffer{ReadCloser: resp.Body, answer: answer}
		}
		return resp, nil
	})
}

// counts are the informer's event handler calls.
type counts struct {
	adds, updates, resyncs, deletes atomic.Int32
	mu                              sync.Mutex
	added                           []string
}

func (c *counts) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("adds=%d (%v) updates=%d resyncs=%d deletes=%d",
		c.adds.Load(), c.added, c.updates.Load(), c.resyncs.Load(), c.deletes.Load())
}

// storeState is the informer cache as "name=v" strings, sorted, for exact comparison.
func storeState(store cache.Store) []string {
	var out []string
	for _, obj := range store.List() {
		cm := obj.(*corev1.ConfigMap)
		out = append(out, cm.Name+"="+cm.Data["v"])
	}
	sort.Strings(out)
	return out
}

func runInformer(ctx context.Context, cfg *rest.Config, window int) {
	cs, err := kubernetes.NewForConfig(cfg)
	must("setup", err, "clientset")
	ns := "cg-inf-" + suffix()
	createNamespace(ctx, cs, "setup", ns)
	cms := cs.CoreV1().ConfigMaps(ns)

	// (a) A raw watch from a resourceVersion older than the window: 410 Expired.
	probe, err := cms.Create(ctx, configMap(ns, "probe", nil, map[string]string{"v": "0"}), metav1.CreateOptions{})
	must("raw-watch-expired", err, "create probe")
	oldRV := probe.ResourceVersion
	for i := 1; i <= window+10; i++ {
		probe.Data["v"] = strconv.Itoa(i)
		probe, err = cms.Update(ctx, probe, metav1.UpdateOptions{})
		must("raw-watch-expired", err, "update probe")
	}
	w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: oldRV})
	if err != nil {
		expect("raw-watch-expired", apierrors.IsResourceExpired(err) || apierrors.IsGone(err),
			"watch from rv %s after %d writes: want 410 Expired, got %v", oldRV, window+10, err)
		pass("raw-watch-expired", "watch from rv %s (older than the %d-event window) refused: %v", oldRV, window, err)
	} else {
		select {
		case ev, open := <-w.ResultChan():
			expect("raw-watch-expired", open && ev.Type == watch.Error, "watch from rv %s after %d writes: first event %v %T (open=%v), want ERROR 410",
				oldRV, window+10, ev.Type, ev.Object, open)
			status := apierrors.FromObject(ev.Object)
			expect("raw-watch-expired", apierrors.IsResourceExpired(status) || apierrors.IsGone(status),
				"ERROR event is not 410 Expired/Gone: %v", status)
			expect("raw-watch-expired", status.(apierrors.APIStatus).Status().Code == http.StatusGone,
				"ERROR event code %d, want 410", status.(apierrors.APIStatus).Status().Code)
			pass("raw-watch-expired", "watch from rv %s (older than the %d-event window) got ERROR event: %s (reason %s)",
				oldRV, window, status, apierrors.ReasonForError(status))
		case <-time.After(10 * time.Second):
			fail("raw-watch-expired", "watch from expired rv %s: no event within 10s", oldRV)
		}
		w.Stop()
	}
	w, err = cms.Watch(ctx, metav1.ListOptions{ResourceVersion: probe.ResourceVersion})
	must("raw-watch-current", err, "watch from current rv")
	must("raw-watch-current", cms.Delete(ctx, "probe", metav1.DeleteOptions{}), "delete probe")
	select {
	case ev := <-w.ResultChan():
		cm, _ := ev.Object.(*corev1.ConfigMap)
		expect("raw-watch-current", ev.Type == watch.Deleted && cm != nil && cm.Name == "probe", "want DELETED probe, got %v %v", ev.Type, ev.Object)
	case <-time.After(10 * time.Second):
		fail("raw-watch-current", "watch from current rv %s: no DELETED event within 10s", probe.ResourceVersion)
	}
	w.Stop()
	pass("raw-watch-current", "watch from the newest rv %s delivered DELETED probe", probe.ResourceVersion)

	for _, mode := range []struct {
		name      string
		watchList bool
	}{{"watch-list", true}, {"list-watch", false}} {
		gates.watchList.Store(mode.watchList)
		informerScenario(ctx, cfg, cs, ns, mode.name, window)
	}
	must("cleanup", cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}), "delete namespace")
}

func informerScenario(ctx context.Context, cfg *rest.Config, cs kubernetes.Interface, baseNS, mode string, window int) {
	check := func(name string) string { return mode + "/" + name }
	ns := baseNS + "-" + mode
	createNamespace(ctx, cs, check("sync"), ns)
	defer func() {
		must(check("cleanup"), cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}), "delete namespace")
	}()
	label := "scenario=" + mode
	cms := cs.CoreV1().ConfigMaps(ns)
	create := func(check, name, v string) {
		_, err := cms.Create(ctx, configMap(ns, name, map[string]string{"scenario": mode}, map[string]string{"v": v}), metav1.CreateOptions{})
		must(check, err, "create "+name)
	}
	update := func(check, name, v string) {
		_, err := cms.Patch(ctx, name, "application/merge-patch+json", []byte(`{"data":{"v":"`+v+`"}}`), metav1.PatchOptions{})
		must(check, err, "patch "+name)
	}
	remove := func(check, name string) {
		must(check, cms.Delete(ctx, name, metav1.DeleteOptions{}), "delete "+name)
	}
	for _, name := range []string{"a", "b", "c"} {
		create(check("sync"), name, "1")
	}

	gate := &watchGate{watchTimeout: "2"}
	icfg := rest.CopyConfig(cfg)
	icfg.Wrap(gate.wrap)
	ics, err := kubernetes.NewForConfig(icfg)
	must(check("sync"), err, "informer clientset")
	factory := informers.NewSharedInformerFactoryWithOptions(ics, time.Second,
		informers.WithNamespace(ns), informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = label }))
	informer := factory.Core().V1().ConfigMaps().Informer()
	var c counts
	reg, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			c.adds.Add(1)
			c.mu.Lock()
			c.added = append(c.added, obj.(*corev1.ConfigMap).Name)
			c.mu.Unlock()
		},
		UpdateFunc: func(oldObj, newObj any) {
			if oldObj.(*corev1.ConfigMap).ResourceVersion == newObj.(*corev1.ConfigMap).ResourceVersion {
				c.resyncs.Add(1)
			} else {
				c.updates.Add(1)
			}
		},
		DeleteFunc: func(obj any) { c.deletes.Add(1) },
	})
	must(check("sync"), err, "add event handler")
	stop := make(chan struct{})
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		factory.Shutdown()
	}()
	factory.Start(stop)
	syncCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	synced := cache.WaitForCacheSync(syncCtx.Done(), informer.HasSynced, reg.HasSynced)
	cancel()
	expect(check("sync"), synced, "informer did not sync within 15s (transport: %s)", gate.history())
	store := informer.GetStore()
	expect(check("sync"), slices.Equal(storeState(store), []string{"a=1", "b=1", "c=1"}) && c.adds.Load() == 3,
		"after sync: store %v, %s", storeState(store), &c)
	pass(check("sync"), "WaitForCacheSync done; cache %v; %d AddFunc calls", storeState(store), c.adds.Load())

	wait := func(check, what string, timeout time.Duration, cond func() bool) {
		ok, _ := poll(ctx, timeout, 50*time.Millisecond, func() (bool, error) { return cond(), nil })
		expect(check, ok, "%s not reached within %s: store %v, %s, transport: %s", what, timeout, storeState(store), &c, gate.history())
	}

	// Plain events.
	create(check("events"), "d", "1")
	update(check("events"), "a", "2")
	remove(check("events"), "b")
	wait(check("events"), "add d, update a, delete b", 10*time.Second, func() bool {
		return c.adds.Load() == 4 && c.updates.Load() >= 1 && c.deletes.Load() == 1 &&
			slices.Equal(storeState(store), []string{"a=2", "c=1", "d=1"})
	})
	pass(check("events"), "add/update/delete handlers called; cache %v; %s", storeState(store), &c)

	// Watches the server ends (timeoutSeconds=2) are resumed from their resourceVersion, no relist;
	// meanwhile the 1s resync period calls UpdateFunc with unchanged objects.
	relists, resumes, resyncs := gate.relists.Load(), gate.resumes.Load(), c.resyncs.Load()
	wait(check("watch-resume"), "two resumed watches", 10*time.Second, func() bool { return gate.resumes.Load() >= resumes+2 })
	update(check("watch-resume"), "d", "2")
	wait(check("watch-resume"), "update of d", 10*time.Second, func() bool {
		return slices.Equal(storeState(store), []string{"a=2", "c=1", "d=2"})
	})
	// Two resyncs at least (3 objects each) in the >= 4s that took.
	expect(check("resync"), c.resyncs.Load() >= resyncs+2*3, "resync period 1s: only %d UpdateFunc calls with an unchanged resourceVersion in %s",
		c.resyncs.Load()-resyncs, "two watch lifetimes")
	pass(check("resync"), "resync period 1s: %d UpdateFunc calls with an unchanged resourceVersion", c.resyncs.Load()-resyncs)
	expect(check("watch-resume"), gate.relists.Load() == relists,
		"a watch ended by the server was followed by a relist, not a resume (relists %d -> %d; transport: %s)",
		relists, gate.relists.Load(), gate.history())
	pass(check("watch-resume"), "%d watches ended by the server (timeoutSeconds=2) resumed from their resourceVersion without relisting",
		gate.resumes.Load()-resumes)

	// Break the watch: hold the reflector's next watch back, write more than the window, release.
	gate.close()
	wait(check("expired-resume"), "a held-back watch request", 10*time.Second, func() bool { return gate.blocked.Load() >= 1 })
	relists = gate.relists.Load()
	addsBefore, deletesBefore := c.adds.Load(), c.deletes.Load()
	writes := 0
	for _, name := range []string{"e", "f", "g"} {
		create(check("expired-resume"), name, "1")
		writes++
	}
	remove(check("expired-resume"), "g")
	remove(check("expired-resume"), "c")
	writes += 2
	last := ""
	for i := 3; writes <= window+5; i++ {
		last = strconv.Itoa(i)
		update(check("expired-resume"), "a", last)
		writes++
	}
	gate.open()
	want := []string{"a=" + last, "d=2", "e=1", "f=1"}
	wait(check("expired-resume"), "the cache after the relist", 15*time.Second, func() bool {
		return slices.Equal(storeState(store), want)
	})
	expect(check("expired-resume"), gate.relists.Load() > relists,
		"the cache is right but the informer never relisted (transport: %s)", gate.history())
	gate.mu.Lock()
	held := slices.Clone(gate.held)
	gate.mu.Unlock()
	expect(check("expired-resume"), len(held) >= 1, "no watch request went through the gate")
	answer := held[0].String()
	expect(check("expired-resume"), held[0].status == http.StatusGone ||
		(strings.Contains(answer, `"ERROR"`) && strings.Contains(answer, `"code":410`)),
		"the watch resumed from rv %s after %d writes was not answered 410: %s", held[0].rv, writes, answer)
	expect(check("expired-resume"), c.adds.Load() == addsBefore+2 && c.deletes.Load() == deletesBefore+1,
		"after the relist want exactly 2 more adds (e, f; never g) and 1 more delete (c): %s", &c)
	pass(check("expired-resume"), "watch resumed after %d writes (window %d) was refused [%s]; informer relisted; cache exactly %v; %s",
		writes, window, answer, storeState(store), &c)

	// The informer keeps working after the relist.
	update(check("after-relist"), "f", "2")
	remove(check("after-relist"), "e")
	want = []string{"a=" + last, "d=2", "f=2"}
	wait(check("after-relist"), "events after the relist", 10*time.Second, func() bool { return slices.Equal(storeState(store), want) })
	pass(check("after-relist"), "events after the relist arrive; cache %v", storeState(store))
	close(stop)
}
