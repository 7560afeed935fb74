package shimapi

import (
	"context"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/ttrpc"
	"google.golang.org/protobuf/proto"
)

// method adapts one Task RPC to ttrpc's untyped method signature, telling the idle trimmer
// about each request.
func method[Req any, PReq interface {
	*Req
	proto.Message
}, Resp any](idle *idleTrimmer, f func(context.Context, PReq) (Resp, error)) ttrpc.Method {
	return func(ctx context.Context, unmarshal func(any) error) (any, error) {
		idle.touch()
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
		"State":      method[taskapi.StateRequest](s.idle, s.State),
		"Create":     method[taskapi.CreateTaskRequest](s.idle, s.Create),
		"Start":      method[taskapi.StartRequest](s.idle, s.Start),
		"Delete":     method[taskapi.DeleteRequest](s.idle, s.Delete),
		"Pids":       method[taskapi.PidsRequest](s.idle, s.Pids),
		"Pause":      method[taskapi.PauseRequest](s.idle, s.Pause),
		"Resume":     method[taskapi.ResumeRequest](s.idle, s.Resume),
		"Checkpoint": method[taskapi.CheckpointTaskRequest](s.idle, s.Checkpoint),
		"Kill":       method[taskapi.KillRequest](s.idle, s.Kill),
		"Exec":       method[taskapi.ExecProcessRequest](s.idle, s.Exec),
		"ResizePty":  method[taskapi.ResizePtyRequest](s.idle, s.ResizePty),
		"CloseIO":    method[taskapi.CloseIORequest](s.idle, s.CloseIO),
		"Update":     method[taskapi.UpdateTaskRequest](s.idle, s.Update),
		"Wait":       method[taskapi.WaitRequest](s.idle, s.Wait),
		"Stats":      method[taskapi.StatsRequest](s.idle, s.Stats),
		"Connect":    method[taskapi.ConnectRequest](s.idle, s.Connect),
		"Shutdown":   method[taskapi.ShutdownRequest](s.idle, s.Shutdown),
	}
	srv.RegisterService("containerd.task.v2.Task", &ttrpc.ServiceDesc{Methods: methods})
	srv.RegisterService("containerd.task.v3.Task", &ttrpc.ServiceDesc{Methods: methods})
}
