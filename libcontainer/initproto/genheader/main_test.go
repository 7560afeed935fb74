package main

import (
	"bytes"
	"os"
	"testing"
)

// The C side compiles against the header in the tree: it must be what the constants say.
func TestHeaderIsCurrent(t *testing.T) {
	want, err := header("..")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../nsenter/proto.h")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("libcontainer/nsenter/proto.h is stale: run go generate ./libcontainer/initproto\n%s", want)
	}
}
