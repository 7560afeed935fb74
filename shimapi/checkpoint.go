package shimapi

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/containerd/api/types/runc/options"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Checkpoint dumps a running container with the runtime's checkpoint command (CRIU), with
// containerd's runc checkpoint options; with Exit the container's processes end after the dump.
func (s *Service) Checkpoint(ctx context.Context, r *taskapi.CheckpointTaskRequest) (*emptypb.Empty, error) {
	c, err := s.lock(r.ID)
	if err != nil {
		return nil, err
	}
	defer c.op.Unlock()
	var opts options.CheckpointOptions
	if r.Options != nil {
		if r.Options.GetTypeUrl() != "" && !strings.HasSuffix(r.Options.GetTypeUrl(), "containerd.runc.v1.CheckpointOptions") {
			return nil, status.Errorf(codes.InvalidArgument, "checkpoint options: unknown type %q", r.Options.GetTypeUrl())
		}
		if err := proto.Unmarshal(r.Options.GetValue(), &opts); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "checkpoint options: %v", err)
		}
	}
	image := r.Path
	if image == "" {
		image = opts.ImagePath
	}
	if image == "" {
		image = c.criuImage
	}
	if image == "" {
		return nil, status.Errorf(codes.InvalidArgument, "checkpoint of %s: no image path", r.ID)
	}
	// CRIU's work files (logs) go beside the images unless a work path is given, as runc's shim.
	work := opts.WorkPath
	if work == "" {
		work = c.criuWork
	}
	if work == "" {
		work = filepath.Join(c.bundle, "criu-work")
		defer os.RemoveAll(work)
	}
	args := []string{"checkpoint", "--image-path", image, "--work-path", work}
	if !opts.Exit {
		args = append(args, "--leave-running")
	}
	if opts.OpenTcp {
		args = append(args, "--tcp-established")
	}
	if opts.ExternalUnixSockets {
		args = append(args, "--ext-unix-sk")
	}
	if opts.Terminal {
		args = append(args, "--shell-job")
	}
	if opts.FileLocks {
		args = append(args, "--file-locks")
	}
	for _, ns := range opts.EmptyNamespaces {
		args = append(args, "--empty-ns", ns)
	}
	if opts.CgroupsMode != "" {
		args = append(args, "--manage-cgroups-mode", opts.CgroupsMode)
	}
	if err := c.rt.checkpoint(r.ID, args); err != nil {
		return nil, toStatus(err)
	}
	if opts.ImagePath != "" && opts.ImagePath != image {
		// containerd 1.6 keeps a non-runc runtime's checkpoint in its content store and gives
		// the shim a directory of its own; the images also go where the client asked.
		if err := copyFlatDir(image, opts.ImagePath); err != nil {
			return nil, toStatus(fmt.Errorf("checkpoint images to %s: %w", opts.ImagePath, err))
		}
	}
	return &emptypb.Empty{}, nil
}

// copyFlatDir copies the files and symlinks of a CRIU image directory (it has no subdirectories).
func copyFlatDir(from, to string) error {
	if err := os.MkdirAll(to, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range entries {
		src, dst := filepath.Join(from, e.Name()), filepath.Join(to, e.Name())
		switch {
		case e.Type()&os.ModeSymlink != 0:
			link, err := os.Readlink(src)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, dst); err != nil {
				return err
			}
		case e.Type().IsRegular():
			b, err := os.ReadFile(src)
			if err != nil {
				return err
			}
			if err := os.WriteFile(dst, b, 0o600); err != nil {
				return err
			}
		}
	}
	return nil
}
