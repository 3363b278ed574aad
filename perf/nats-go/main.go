// nats-go-load: the issue #9 workloads with the official Go client (nats.go),
// whose publishers do not pace themselves: each publishes as fast as its
// buffered writer takes and flushes once at the end, as `nats bench` does.
// Subscribers lift the client-side pending limits, so any loss or cut is
// the server's. Exits 1 when a message is lost, a subscriber is cut, or the
// run does not complete within -timeout. Run by scripts/nats-go-check.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

func main() {
	url := flag.String("s", "nats://127.0.0.1:4222", "server")
	mode := flag.String("mode", "fanout", "fanout|pairs|queue|pub|reqrep")
	np := flag.Int("pub", 8, "publishers")
	ns := flag.Int("sub", 8, "subscribers")
	n := flag.Int("n", 125000, "messages per publisher")
	size := flag.Int("size", 128, "payload")
	timeout := flag.Duration("timeout", 60*time.Second, "max wait")
	flag.Parse()

	var errs int64
	var errMsgs sync.Map
	opts := func() []nats.Option {
		return []nats.Option{
			nats.ErrorHandler(func(c *nats.Conn, s *nats.Subscription, e error) {
				atomic.AddInt64(&errs, 1)
				errMsgs.Store(e.Error(), true)
			}),
			nats.DisconnectErrHandler(func(c *nats.Conn, e error) {
				if e != nil {
					atomic.AddInt64(&errs, 1)
					errMsgs.Store("disconnect: "+e.Error(), true)
				}
			}),
			nats.MaxReconnects(0),
		}
	}
	payload := make([]byte, *size)
	var recv []int64
	var subConns []*nats.Conn
	subjectOf := func(i int) string {
		if *mode == "pairs" {
			return fmt.Sprintf("pair.%d", i)
		}
		return "bench.subject"
	}
	nsubs := *ns
	if *mode == "pairs" {
		nsubs = *np
	}
	if *mode == "pub" || *mode == "reqrep" {
		nsubs = 0 // reqrep makes its own responder below
	}
	done := make(chan struct{}, 1)
	var total int64
	var want int64
	switch *mode {
	case "fanout":
		want = int64(*np) * int64(*n) * int64(nsubs)
	case "pairs", "queue":
		want = int64(*np) * int64(*n)
	}
	recv = make([]int64, nsubs)
	for i := 0; i < nsubs; i++ {
		nc, err := nats.Connect(*url, opts()...)
		if err != nil {
			fmt.Println("connect:", err)
			os.Exit(2)
		}
		subConns = append(subConns, nc)
		idx := i
		cb := func(m *nats.Msg) {
			atomic.AddInt64(&recv[idx], 1)
			if atomic.AddInt64(&total, 1) == want {
				done <- struct{}{}
			}
		}
		var sub *nats.Subscription
		if *mode == "queue" {
			sub, err = nc.QueueSubscribe("bench.subject", "q", cb)
		} else {
			sub, err = nc.Subscribe(subjectOf(i), cb)
		}
		if err != nil {
			fmt.Println("sub:", err)
			os.Exit(2)
		}
		sub.SetPendingLimits(-1, -1)
		if err := nc.Flush(); err != nil {
			fmt.Println("flush:", err)
			os.Exit(2)
		}
	}
	if *mode == "reqrep" {
		svc, err := nats.Connect(*url, opts()...)
		if err != nil {
			fmt.Println("connect:", err)
			os.Exit(2)
		}
		if _, err := svc.Subscribe("svc", func(m *nats.Msg) { m.Respond(m.Data) }); err != nil {
			fmt.Println("sub:", err)
			os.Exit(2)
		}
		if err := svc.Flush(); err != nil {
			fmt.Println("flush:", err)
			os.Exit(2)
		}
		var fails, oks int64
		var wg sync.WaitGroup
		start := time.Now()
		for p := 0; p < *np; p++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				nc, err := nats.Connect(*url, opts()...)
				if err != nil {
					atomic.AddInt64(&fails, int64(*n))
					errMsgs.Store("connect: "+err.Error(), true)
					return
				}
				defer nc.Close()
				for i := 0; i < *n; i++ {
					if _, err := nc.Request("svc", payload, 5*time.Second); err != nil {
						atomic.AddInt64(&fails, 1)
						errMsgs.Store(err.Error(), true)
					} else {
						atomic.AddInt64(&oks, 1)
					}
				}
			}()
		}
		wg.Wait()
		el := time.Since(start)
		fmt.Printf("reqrep requesters=%d ok=%d fail=%d %.0f req/s\n", *np, oks, fails, float64(oks)/el.Seconds())
		errMsgs.Range(func(k, v any) bool { fmt.Println("  err:", k); return true })
		svc.Close()
		if fails > 0 {
			os.Exit(1)
		}
		return
	}
	var pubConns []*nats.Conn
	for p := 0; p < *np; p++ {
		nc, err := nats.Connect(*url, opts()...)
		if err != nil {
			fmt.Println("connect:", err)
			os.Exit(2)
		}
		pubConns = append(pubConns, nc)
	}
	var wg sync.WaitGroup
	start := time.Now()
	for p := 0; p < *np; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			nc := pubConns[p]
			subj := subjectOf(p)
			for i := 0; i < *n; i++ {
				nc.Publish(subj, payload)
			}
			nc.Flush()
		}(p)
	}
	wg.Wait()
	pubEl := time.Since(start)
	ok := true
	if want > 0 {
		select {
		case <-done:
		case <-time.After(*timeout):
			ok = false
		}
	}
	el := time.Since(start)
	got := atomic.LoadInt64(&total)
	parts := []string{}
	for i := range recv {
		parts = append(parts, fmt.Sprint(atomic.LoadInt64(&recv[i])))
	}
	if want == 0 {
		fmt.Printf("%s pub=%d size=%d sent=%d %.0f msgs/s\n", *mode, *np, *size, *np**n, float64(*np**n)/pubEl.Seconds())
	} else {
		fmt.Printf("%s pub=%d sub=%d size=%d delivered=%d/%d lost=%d complete=%v %.0f msgs/s errs=%d\n", *mode, *np, nsubs, *size, got, want, want-got, ok, float64(got)/el.Seconds(), atomic.LoadInt64(&errs))
	}
	if !ok {
		fmt.Println("  per-sub:", strings.Join(parts, " "))
	}
	errMsgs.Range(func(k, v any) bool { fmt.Println("  err:", k); return true })
	for _, c := range subConns {
		c.Close()
	}
	for _, c := range pubConns {
		c.Close()
	}
	if !ok || got != want || atomic.LoadInt64(&errs) > 0 {
		os.Exit(1)
	}
}
