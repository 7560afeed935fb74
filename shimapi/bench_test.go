package shimapi

import (
	"context"
	"testing"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"google.golang.org/protobuf/proto"
)

// BenchmarkStateRequest is the shim's most frequent RPC: decode, look up, answer.
func BenchmarkStateRequest(b *testing.B) {
	s := &Service{containers: map[string]*container{}, byPid: map[int]*process{}, held: map[int]exit{}}
	p := newProcess("c", "", "", "", "", false)
	s.containers["c"] = &container{id: "c", bundle: "/b", init: p, execs: map[string]*process{}}
	m := method[taskapi.StateRequest](nil, s.State)
	req, _ := proto.Marshal(&taskapi.StateRequest{ID: "c"})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		resp, err := m(context.Background(), func(v any) error { return proto.Unmarshal(req, v.(proto.Message)) })
		if err != nil {
			b.Fatal(err)
		}
		if _, err := proto.Marshal(resp.(proto.Message)); err != nil {
			b.Fatal(err)
		}
	}
}
