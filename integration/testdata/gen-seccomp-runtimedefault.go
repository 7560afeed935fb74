//go:build ignore

// Writes seccomp-runtimedefault.json: containerd 2.4.2's RuntimeDefault seccomp profile (what the CRI
// plugin gives every container with seccomp RuntimeDefault) for its default capabilities, on amd64.
// Run from a module that requires github.com/containerd/containerd/v2 v2.4.2:
//   go run gen-seccomp-runtimedefault.go > seccomp-runtimedefault.json

package main

import (
	"context"
	"encoding/json"
	"os"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
)

func main() {
	s, err := oci.GenerateSpec(namespaces.WithNamespace(context.Background(), "gen"), nil, &containers.Container{ID: "gen"})
	if err != nil {
		panic(err)
	}
	p := seccomp.DefaultProfile(s)
	e := json.NewEncoder(os.Stdout)
	e.SetIndent("", " ")
	e.Encode(p)
}
