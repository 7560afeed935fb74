package shimapi

import (
	"testing"

	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
)

// FuzzCreateRequest: whatever bytes arrive as a Create request, decoding it and its runtime
// options fails cleanly or succeeds, never panics.
func FuzzCreateRequest(f *testing.F) {
	opts, _ := typeurl.MarshalAnyToProto(&options.Options{BinaryName: "runc", Root: "/run/x", NoPivotRoot: true})
	req, _ := proto.Marshal(&taskapi.CreateTaskRequest{ID: "c", Bundle: "/b", Stdout: "file:///x", Options: opts})
	f.Add(req)
	bad, _ := proto.Marshal(&taskapi.CreateTaskRequest{ID: "c", Options: &anypb.Any{TypeUrl: "containerd.runc.v1.Options", Value: []byte{0xff, 0x01}}})
	f.Add(bad)
	f.Add([]byte{0x0a, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		var r taskapi.CreateTaskRequest
		if proto.Unmarshal(data, &r) != nil {
			return
		}
		_, _ = parseOptions(r.Options)
	})
}
