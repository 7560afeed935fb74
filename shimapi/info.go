package shimapi

import (
	"fmt"
	"io"
	"os"

	apitypes "github.com/containerd/containerd/api/types"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// featuresTypeURL is how containerd names runtime-spec features.json in an Any.
const featuresTypeURL = "types.containerd.io/opencontainers/runtime-spec/1/features/Features"

// Info is the `-info` action (containerd 2.x introspection): runtime options as a protobuf Any on
// stdin; RuntimeInfo with the runtime's `features` on stdout.
func Info(version string, stdin io.Reader, stdout io.Writer) error {
	in, err := io.ReadAll(stdin)
	if err != nil {
		return err
	}
	info := &apitypes.RuntimeInfo{Name: "io.containerd.husk.v2", Version: &apitypes.RuntimeVersion{Version: version}}
	binary := DefaultRuntime
	if len(in) > 0 {
		var a anypb.Any
		if err := proto.Unmarshal(in, &a); err != nil {
			return fmt.Errorf("runtime options: %w", err)
		}
		opts, err := parseOptions(&a)
		if err != nil {
			return err
		}
		if opts != nil {
			info.Options = &a
			if opts.BinaryName != "" {
				binary = opts.BinaryName
			}
		}
	}
	rt := &runtimeClient{binary: binary, root: "/run/husk", logPath: os.DevNull, reaper: newReaper()}
	if out, err := rt.run([3]*os.File{}, true, nil, "features"); err == nil {
		info.Features = &anypb.Any{TypeUrl: featuresTypeURL, Value: out}
	}
	b, err := proto.Marshal(info)
	if err != nil {
		return err
	}
	_, err = stdout.Write(b)
	return err
}
