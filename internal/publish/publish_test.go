package publish

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 20*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// status reads an Ingress's published addresses from the API server.
func status(t *testing.T, client *k8sfake.Clientset, name string) []string {
	t.Helper()
	ing, err := client.NetworkingV1().Ingresses("ns").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, lb := range ing.Status.LoadBalancer.Ingress {
		out = append(out, lb.IP+lb.Hostname)
	}
	return out
}

// TestOneLeaderPublishes: of three replicas, the one that holds the Lease
// writes the status; when it stops, another takes over.
func TestOneLeaderPublishes(t *testing.T) {
	t.Parallel()
	client := k8sfake.NewClientset(&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "front"}})
	ingresses := func() []*networkingv1.Ingress {
		l, _ := client.NetworkingV1().Ingresses("ns").List(context.Background(), metav1.ListOptions{})
		var out []*networkingv1.Ingress
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
		return out
	}
	type replica struct {
		p      *Publisher
		cancel context.CancelFunc
		done   chan struct{}
	}
	var replicas []*replica
	for i := range 3 {
		p, err := New(Options{Client: client, Ingresses: ingresses, Addresses: []string{fmt.Sprintf("198.18.9.%d", i+1), "lb.example.com"},
			LeaseNamespace: "kns", LeaseName: "status", Identity: fmt.Sprintf("replica-%d", i), LeaseDuration: time.Second, Log: quiet})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := &replica{p: p, cancel: cancel, done: make(chan struct{})}
		go func() { defer close(r.done); _ = p.Run(ctx) }()
		replicas = append(replicas, r)
	}
	var stopOnce sync.Once
	stopAll := func() {
		stopOnce.Do(func() {
			for _, r := range replicas {
				r.cancel()
				<-r.done
			}
		})
	}
	t.Cleanup(stopAll)
	leaders := func() []int {
		var out []int
		for i, r := range replicas {
			if r.p.Leader() {
				out = append(out, i)
			}
		}
		return out
	}
	waitFor(t, "a leader", func() bool { return len(leaders()) == 1 })
	first := leaders()[0]
	want := []string{"lb.example.com", fmt.Sprintf("198.18.9.%d", first+1)}
	waitFor(t, "the leader's status", func() bool { return slices.Equal(status(t, client, "front"), want) })
	if n := len(leaders()); n != 1 {
		t.Fatalf("%d leaders", n)
	}

	// The leader stops: another replica takes over, and publishes its own
	// address (the test gives each replica one, to see who writes).
	replicas[first].cancel()
	<-replicas[first].done
	waitFor(t, "another leader", func() bool { l := leaders(); return len(l) == 1 && l[0] != first })
	second := leaders()[0]
	want = []string{"lb.example.com", fmt.Sprintf("198.18.9.%d", second+1)}
	waitFor(t, "the new leader's status", func() bool { return slices.Equal(status(t, client, "front"), want) })
	// A new Ingress is published by the new leader once notified.
	if _, err := client.NetworkingV1().Ingresses("ns").Create(context.Background(),
		&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "new"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	replicas[second].p.Notify()
	waitFor(t, "the new Ingress's status", func() bool { return slices.Equal(status(t, client, "new"), want) })
	stopAll()
}

func TestServiceAddresses(t *testing.T) {
	t.Parallel()
	lb := &corev1.Service{Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.1", ExternalIPs: []string{"198.18.0.7"}},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "203.0.113.1"}, {Hostname: "lb.example.com"}}}}}
	if got := serviceAddresses(lb); !slices.Equal(got, []string{"203.0.113.1", "lb.example.com"}) {
		t.Errorf("load balancer: %v", got)
	}
	lb.Status = corev1.ServiceStatus{}
	if got := serviceAddresses(lb); !slices.Equal(got, []string{"198.18.0.7"}) {
		t.Errorf("external IPs: %v", got)
	}
	lb.Spec.ExternalIPs = nil
	if got := serviceAddresses(lb); !slices.Equal(got, []string{"10.96.0.1"}) {
		t.Errorf("ClusterIP: %v", got)
	}
	lb.Spec.ClusterIP = corev1.ClusterIPNone
	if got := serviceAddresses(lb); len(got) != 0 {
		t.Errorf("headless: %v", got)
	}
}

func TestCheckAddress(t *testing.T) {
	t.Parallel()
	for a, ok := range map[string]bool{"198.18.0.1": true, "2001:db8::1": true, "lb.example.com": true,
		"LB.example.com": false, "*.example.com": false, "a b": false, "": false, "1.2.3.4:80": false} {
		if err := CheckAddress(a); (err == nil) != ok {
			t.Errorf("CheckAddress(%q) = %v", a, err)
		}
	}
}

// TestStatusClearedWhenAnIngressLeaves: an Ingress that is no longer
// routed has the status this controller wrote cleared; one whose status
// another controller wrote meanwhile keeps it, and so does one that now
// names another class.
func TestStatusClearedWhenAnIngressLeaves(t *testing.T) {
	t.Parallel()
	client := k8sfake.NewClientset(&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}},
		&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "b"}},
		&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c"}})
	var mu sync.Mutex
	routed := map[string]bool{"a": true, "b": true, "c": true}
	ingresses := func() []*networkingv1.Ingress {
		mu.Lock()
		defer mu.Unlock()
		l, _ := client.NetworkingV1().Ingresses("ns").List(context.Background(), metav1.ListOptions{})
		var out []*networkingv1.Ingress
		for i := range l.Items {
			if routed[l.Items[i].Name] {
				out = append(out, &l.Items[i])
			}
		}
		return out
	}
	p, err := New(Options{Client: client, Ingresses: ingresses, Class: "kns", Addresses: []string{"198.18.9.1"},
		LeaseNamespace: "kns", LeaseName: "status", Identity: "replica", LeaseDuration: time.Second, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	ours := []string{"198.18.9.1"}
	waitFor(t, "all published", func() bool {
		return slices.Equal(status(t, client, "a"), ours) && slices.Equal(status(t, client, "b"), ours) &&
			slices.Equal(status(t, client, "c"), ours)
	})

	// b is taken over by another controller, which writes its address; c
	// moves to another class, whose controller publishes the same address
	// (and so writes nothing); then all leave ours.
	b, _ := client.NetworkingV1().Ingresses("ns").Get(ctx, "b", metav1.GetOptions{})
	b.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "203.0.113.9"}}
	if _, err := client.NetworkingV1().Ingresses("ns").UpdateStatus(ctx, b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	c, _ := client.NetworkingV1().Ingresses("ns").Get(ctx, "c", metav1.GetOptions{})
	c.Spec.IngressClassName = ptr.To("nginx")
	if _, err := client.NetworkingV1().Ingresses("ns").Update(ctx, c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	routed = map[string]bool{}
	mu.Unlock()
	p.Notify()
	waitFor(t, "a's status cleared", func() bool { return len(status(t, client, "a")) == 0 })
	if got := status(t, client, "b"); !slices.Equal(got, []string{"203.0.113.9"}) {
		t.Errorf("b's status %q, want the other controller's", got)
	}
	if got := status(t, client, "c"); !slices.Equal(got, ours) {
		t.Errorf("c's status %q, want the addresses its new class's controller publishes too", got)
	}
}
