package main

import (
	"fmt"
	"os"
	"text/tabwriter"
)

// report prints each figure by handler and pod count with husk's ratio to every other
// handler, then the targets with met or missed. The first handler is husk's.
func report(c config, results []result, masks []maskedResult) {
	if len(c.handlers) == 0 {
		return
	}
	husk := c.handlers[0]
	get := func(h string, n int) *result {
		for i := range results {
			if results[i].Handler == h && results[i].Pods == n {
				return &results[i]
			}
		}
		return nil
	}
	figures := []struct {
		name string
		of   func(*result) float64
	}{
		{"pods/s at concurrency", func(r *result) float64 { return r.PodsPerSec }},
		{"pod start p50 ms", func(r *result) float64 { return r.StartP50ms }},
		{"pod start p99 ms", func(r *result) float64 { return r.StartP99ms }},
		{"CreateContainer p50 ms", func(r *result) float64 { return r.CreateP50ms }},
		{"stack CPU ms/pod start", func(r *result) float64 { return r.StartStackCPUms }},
		{"containerd CPU ms/pod start", func(r *result) float64 { return r.StartContainerdCPUms }},
		{"runtime CPU ms/pod start", func(r *result) float64 { return r.StartRuntimeCPUms }},
		{"probe p50 ms", func(r *result) float64 { return r.ProbeP50ms }},
		{"probe p99 ms", func(r *result) float64 { return r.ProbeP99ms }},
		{"stack CPU ms/probe", func(r *result) float64 { return r.StackCPUms }},
		{"containerd CPU ms/probe", func(r *result) float64 { return r.ContainerdCPUms }},
		{"runtime CPU ms/probe", func(r *result) float64 { return r.RuntimeCPUms }},
		{"  of which shims' own", func(r *result) float64 { return r.ShimCPUms }},
		{"  of which in the pods", func(r *result) float64 { return r.ContainerCPUms }},
		{"shim PSS MB/pod idle", func(r *result) float64 { return r.IdlePSSMB }},
		{"shim PSS MB/pod probed", func(r *result) float64 { return r.LoadPSSMB }},
		{"shim max RSS MB after exec", func(r *result) float64 { return r.MaxRSSExecMB }},
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := "figure\tpods\t"
	for _, h := range c.handlers {
		header += h + "\t"
	}
	for _, h := range c.handlers[1:] {
		header += husk + "/" + h + "\t"
	}
	fmt.Fprintln(w, header)
	for _, f := range figures {
		for _, n := range c.scales {
			line := fmt.Sprintf("%s\t%d\t", f.name, n)
			hr := get(husk, n)
			for _, h := range c.handlers {
				if r := get(h, n); r != nil {
					line += fmt.Sprintf("%.2f\t", f.of(r))
				} else {
					line += "-\t"
				}
			}
			for _, h := range c.handlers[1:] {
				if r := get(h, n); r != nil && hr != nil && f.of(r) != 0 {
					line += fmt.Sprintf("%.2f\t", f.of(hr)/f.of(r))
				} else {
					line += "-\t"
				}
			}
			fmt.Fprintln(w, line)
		}
	}
	w.Flush()
	if len(masks) > 0 {
		fmt.Println()
		mw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(mw, "container start p50 ms\tmasked dirs\t"+joinTab(c.handlers))
		for _, n := range c.masked {
			line := fmt.Sprintf("\t%d\t", n)
			for _, h := range c.handlers {
				line += fmt.Sprintf("%.2f\t", maskedAt(masks, h, n))
			}
			fmt.Fprintln(mw, line)
		}
		mw.Flush()
	}
	targets(c, get, masks)
}

func joinTab(s []string) string {
	out := ""
	for _, x := range s {
		out += x + "\t"
	}
	return out
}

func maskedAt(masks []maskedResult, h string, n int) float64 {
	for _, m := range masks {
		if m.Handler == h && m.Masked == n {
			return m.P50ms
		}
	}
	return 0
}

// targets prints the goals for husk with met or missed (goals, not assertions).
func targets(c config, get func(string, int) *result, masks []maskedResult) {
	husk := c.handlers[0]
	top := c.scales[len(c.scales)-1]
	fmt.Println()
	fmt.Println("targets (husk; at the largest pod count unless said):")
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	say := func(what string, got string, ok bool) { fmt.Printf("  %-62s %-28s %s\n", what, got, verdict(ok)) }
	hr := get(husk, top)
	if hr == nil {
		return
	}
	say("husk's own CPU per probe (shim, forks, container side) <= 1 ms", fmt.Sprintf("%.2f ms", hr.RuntimeCPUms), hr.RuntimeCPUms <= 1)
	for _, other := range c.handlers[1:] {
		r := get(other, top)
		if r == nil {
			continue
		}
		limit := 0.5
		if other == "runc" {
			limit = 0.22
		}
		say(fmt.Sprintf("stack CPU per probe <= %.2f of %s's", limit, other), fmt.Sprintf("%.2f", hr.StackCPUms/r.StackCPUms), hr.StackCPUms/r.StackCPUms <= limit)
		if other == "runc" {
			say("pods/s at concurrency 10 >= 2x runc's", fmt.Sprintf("%.2fx", hr.PodsPerSec/r.PodsPerSec), hr.PodsPerSec/r.PodsPerSec >= 2)
			say("pod start p99 <= 0.5 of runc's", fmt.Sprintf("%.2f", hr.StartP99ms/r.StartP99ms), hr.StartP99ms/r.StartP99ms <= 0.5)
			say("CRI CreateContainer <= 0.6 of runc's", fmt.Sprintf("%.2f", hr.CreateP50ms/r.CreateP50ms), hr.CreateP50ms/r.CreateP50ms <= 0.6)
		}
	}
	say(fmt.Sprintf("shim PSS per pod under probe load <= 3.45 MB (%d pods)", top), fmt.Sprintf("%.2f MB", hr.LoadPSSMB), hr.LoadPSSMB <= 3.45)
	say("shim RSS right after an exec <= 6 MB", fmt.Sprintf("%.2f MB", hr.MaxRSSExecMB), hr.MaxRSSExecMB <= 6)
	if len(c.masked) >= 2 && len(masks) > 0 {
		lo, hi := c.masked[0], c.masked[len(c.masked)-1]
		per := (maskedAt(masks, husk, hi) - maskedAt(masks, husk, lo)) / float64(hi-lo)
		say(fmt.Sprintf("marginal start cost per masked dir ~0 (%d to %d)", lo, hi), fmt.Sprintf("%.3f ms/dir", per), per <= 0.01)
	}
}
