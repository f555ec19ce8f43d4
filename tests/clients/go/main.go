// Command kapi-client-go drives a kapi server with the real Go clients (client-go and
// controller-runtime), the way controllers and operators written in Go use a Kubernetes API.
//
// Usage: kapi-client-go [--kubeconfig PATH] [--watch-window N] [--timeout D] SUBCOMMAND
//
// Subcommands: typed, dynamic, informer, leader, controller-runtime, all.
// Every passed check prints one line "PASS <subcommand>/<check>: <detail>" on stdout; the first
// failed check prints "FAIL <subcommand>/<check>: <why>" on stderr and exits with status 1, so the
// caller (tests/e2e/test_client_go.py) can tell exactly which client behaviour kapi broke.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	clientfeatures "k8s.io/client-go/features"
)

// current is the subcommand whose checks are being reported (for the PASS/FAIL prefix).
var current string

// pass reports one passed check; the check name is stable so the pytest side can assert it.
func pass(check, format string, args ...any) {
	fmt.Printf("PASS %s/%s: %s\n", current, check, fmt.Sprintf(format, args...))
}

// fail reports the failed check and ends the program: later checks depend on earlier ones.
func fail(check, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "FAIL %s/%s: %s\n", current, check, fmt.Sprintf(format, args...))
	os.Exit(1)
}

// must fails the check when err is not nil, naming the operation that failed.
func must(check string, err error, what string) {
	if err != nil {
		fail(check, "%s: %v", what, err)
	}
}

// expect fails the check when cond is false.
func expect(check string, cond bool, format string, args ...any) {
	if !cond {
		fail(check, format, args...)
	}
}

// suffix makes names unique per run, so subcommands (and reruns) can share one server.
func suffix() string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// poll calls cond every interval until it returns true or timeout passes; it returns the last
// error cond gave (for the failure message) and whether cond became true.
func poll(ctx context.Context, timeout, interval time.Duration, cond func() (bool, error)) (bool, error) {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return true, nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false, last
		}
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
}

// switchableGates overrides client-go's WatchListClient feature gate at run time so that the
// informer scenario runs both with the streaming watch-list (the default since 1.35) and with
// the classic list-then-watch that older clients use; every other feature keeps its default.
type switchableGates struct {
	base      clientfeatures.Gates
	watchList atomic.Bool
}

func (g *switchableGates) Enabled(key clientfeatures.Feature) bool {
	if key == clientfeatures.WatchListClient {
		return g.watchList.Load()
	}
	return g.base.Enabled(key)
}

var gates *switchableGates

// protobufCRDs names a known kapi gap: client-go >= 0.35 sends the request bodies of its generated
// clientsets as protobuf, and kapi's protobuf index has no apiextensions.k8s.io/v1 messages, so it
// answers 415 to a protobuf CustomResourceDefinition. With it the apiextensions clientset sends JSON.
const protobufCRDs = "protobuf-crds"

const knownWorkarounds = protobufCRDs

// workarounds holds the --kapi-workaround names given; each one is reported in the output.
var workarounds = map[string]bool{}

func main() {
	// controller-runtime registers --kubeconfig itself (pkg/client/config); define it only if absent.
	if flag.Lookup("kubeconfig") == nil {
		flag.String("kubeconfig", "", "kubeconfig file (default: $KUBECONFIG)")
	}
	window := flag.Int("watch-window", 20, "the server's --watch-event-window (the informer check writes more than this)")
	flag.Func("kapi-workaround", "avoid a known kapi incompatibility (repeatable): "+knownWorkarounds,
		func(name string) error {
			if !slices.Contains(strings.Split(knownWorkarounds, ","), name) {
				return fmt.Errorf("unknown workaround %q (known: %s)", name, knownWorkarounds)
			}
			workarounds[name] = true
			return nil
		})
	timeout := flag.Duration("timeout", 150*time.Second, "give up after this long")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: %s [flags] typed|dynamic|informer|leader|controller-runtime|all\n", os.Args[0])
		flag.PrintDefaults()
	}
	klog.InitFlags(nil)
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	// Before anything reads a feature gate, so client-go does not warn about the replacement.
	gates = &switchableGates{base: clientfeatures.FeatureGates()}
	clientfeatures.ReplaceFeatureGates(gates)
	gates.watchList.Store(gates.base.Enabled(clientfeatures.WatchListClient))

	current = flag.Arg(0)
	kubeconfig := flag.Lookup("kubeconfig").Value.String()
	if kubeconfig == "" {
		kubeconfig = os.Getenv("KUBECONFIG")
	}
	if kubeconfig == "" {
		fail("setup", "no kubeconfig: pass --kubeconfig or set KUBECONFIG")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	must("setup", err, "load kubeconfig "+kubeconfig)
	cfg.UserAgent = "kapi-client-go/" + current
	cfg.QPS, cfg.Burst = 200, 400 // the checks write quickly on purpose; client-side throttling only adds time

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	go func() {
		<-ctx.Done()
		if ctx.Err() == context.DeadlineExceeded {
			fail("timeout", "%s did not finish within %s", current, *timeout)
		}
	}()

	commands := map[string]func(context.Context, *rest.Config){
		"typed":              runTyped,
		"dynamic":            runDynamic,
		"informer":           func(ctx context.Context, cfg *rest.Config) { runInformer(ctx, cfg, *window) },
		"leader":             runLeader,
		"controller-runtime": runControllerRuntime,
	}
	if current == "all" {
		names := make([]string, 0, len(commands))
		for name := range commands {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			current = name
			commands[name](ctx, rest.CopyConfig(cfg))
		}
		return
	}
	run, ok := commands[current]
	if !ok {
		names := make([]string, 0, len(commands))
		for name := range commands {
			names = append(names, name)
		}
		sort.Strings(names)
		fail("setup", "unknown subcommand %q (want one of %s, all)", current, strings.Join(names, ", "))
	}
	run(ctx, cfg)
}
