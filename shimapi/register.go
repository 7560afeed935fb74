package shimapi

import (
	"context"
	"sync/atomic"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/ttrpc"
	"google.golang.org/protobuf/proto"
)

// method adapts one Task RPC to ttrpc's untyped method signature, counting requests so the
// shim knows when it has gone idle.
func method[Req any, PReq interface {
	*Req
	proto.Message
}, Resp any](activity *atomic.Uint64, f func(context.Context, PReq) (Resp, error)) ttrpc.Method {
	return func(ctx context.Context, unmarshal func(any) error) (any, error) {
		activity.Add(1)
		req := PReq(new(Req))
		if err := unmarshal(req); err != nil {
			return nil, err
		}
		return f(ctx, req)
	}
}

// Register serves the Task API as containerd.task.v2.Task (containerd 1.6 on) and as
// containerd.task.v3.Task (containerd 2.x): the two services carry the same messages on the
// wire, so one method table serves both.
func Register(srv *ttrpc.Server, s *Service) {
	methods := map[string]ttrpc.Method{
		"State":      method[taskapi.StateRequest](&s.activity, s.State),
		"Create":     method[taskapi.CreateTaskRequest](&s.activity, s.Create),
		"Start":      method[taskapi.StartRequest](&s.activity, s.Start),
		"Delete":     method[taskapi.DeleteRequest](&s.activity, s.Delete),
		"Pids":       method[taskapi.PidsRequest](&s.activity, s.Pids),
		"Pause":      method[taskapi.PauseRequest](&s.activity, s.Pause),
		"Resume":     method[taskapi.ResumeRequest](&s.activity, s.Resume),
		"Checkpoint": method[taskapi.CheckpointTaskRequest](&s.activity, s.Checkpoint),
		"Kill":       method[taskapi.KillRequest](&s.activity, s.Kill),
		"Exec":       method[taskapi.ExecProcessRequest](&s.activity, s.Exec),
		"ResizePty":  method[taskapi.ResizePtyRequest](&s.activity, s.ResizePty),
		"CloseIO":    method[taskapi.CloseIORequest](&s.activity, s.CloseIO),
		"Update":     method[taskapi.UpdateTaskRequest](&s.activity, s.Update),
		"Wait":       method[taskapi.WaitRequest](&s.activity, s.Wait),
		"Stats":      method[taskapi.StatsRequest](&s.activity, s.Stats),
		"Connect":    method[taskapi.ConnectRequest](&s.activity, s.Connect),
		"Shutdown":   method[taskapi.ShutdownRequest](&s.activity, s.Shutdown),
	}
	srv.RegisterService("containerd.task.v2.Task", &ttrpc.ServiceDesc{Methods: methods})
	srv.RegisterService("containerd.task.v3.Task", &ttrpc.ServiceDesc{Methods: methods})
}
