package shimapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/pelletier/go-toml/v2"
	"google.golang.org/protobuf/proto"

	"github.com/husk-runtime/husk/specs"
)

// shimOptions is what the shim keeps in the bundle so the delete action can clean up after a
// dead shim.
type shimOptions struct {
	Binary  string `json:"binary"`
	Root    string `json:"root"`
	Systemd bool   `json:"systemd,omitempty"`
}

// runtimeFor returns the runtime of a new container from its options: husk's engine in this
// process when the binary is the husk beside the shim, else the binary's command line.
func (s *Service) runtimeFor(bundle string, opts *options.Options) containerRuntime {
	o := shimOptions{Binary: DefaultRuntime, Root: filepath.Join("/run/containerd/husk", s.ns)}
	if opts != nil {
		if opts.BinaryName != "" {
			o.Binary = opts.BinaryName
		}
		if opts.Root != "" {
			o.Root = filepath.Join(opts.Root, s.ns)
		}
		o.Systemd = opts.SystemdCgroup
	}
	if b, err := json.Marshal(o); err == nil {
		_ = os.WriteFile(filepath.Join(bundle, "options.json"), b, 0o600)
	}
	command := &runtimeClient{binary: o.Binary, root: o.Root, logPath: filepath.Join(bundle, "log.json"), systemd: o.Systemd, reaper: s.reaper}
	if e := inProcessEngine(o.Binary, o.Root, o.Systemd, s.reaper, command, &s.initBinary, &s.execs); e != nil {
		return e
	}
	return command
}

// parseOptions reads the runtime options containerd sends with Create. Clients that know the
// runc shim (ctr, the CRI plugin for runtime types named like runc's) send runc's options type;
// containerd's CRI plugin sends every other runtime type, io.containerd.husk.v2 included, its
// generic runtimeoptions type: the handler's `options` table as TOML (ConfigBody), or the path
// of a TOML file (ConfigPath). Both carry the same keys as runc's options (BinaryName, Root,
// SystemdCgroup, ...).
func parseOptions(a interface {
	GetTypeUrl() string
	GetValue() []byte
}) (*options.Options, error) {
	if a == nil || a.GetTypeUrl() == "" {
		return nil, nil
	}
	var o *options.Options
	switch url := a.GetTypeUrl(); {
	case strings.HasSuffix(url, "containerd.runc.v1.Options"):
		o = &options.Options{}
		if err := proto.Unmarshal(a.GetValue(), o); err != nil {
			return nil, fmt.Errorf("runtime options: %w", err)
		}
	case strings.HasSuffix(url, "runtimeoptions.v1.Options"):
		var ro runtimeoptions.Options
		if err := proto.Unmarshal(a.GetValue(), &ro); err != nil {
			return nil, fmt.Errorf("runtime options: %w", err)
		}
		var err error
		if o, err = optionsFromTOML(&ro); err != nil || o == nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("runtime options: unknown type %q", a.GetTypeUrl())
	}
	// Nothing is dropped silently: what the shim does not apply is refused.
	switch {
	case o.TaskApiAddress != "" || o.TaskApiVersion != 0:
		return nil, errors.New("runtime options: TaskApiAddress/TaskApiVersion are not supported by the husk shim")
	}
	return o, nil
}

// tomlOptions are the keys of a CRI handler's options table: runc's names. TypeUrl and
// ConfigPath belong to the runtimeoptions message itself (containerd copies the whole table).
type tomlOptions struct {
	BinaryName     string
	Root           string
	SystemdCgroup  bool
	NoPivotRoot    bool
	NoNewKeyring   bool
	ShimCgroup     string
	IoUid          uint32
	IoGid          uint32
	CriuPath       string
	CriuImagePath  string
	CriuWorkPath   string
	TaskApiAddress string
	TaskApiVersion uint32
	TypeUrl        string
	ConfigPath     string
}

// maxOptionsSize bounds a ConfigPath file.
const maxOptionsSize = 1 << 20

func optionsFromTOML(ro *runtimeoptions.Options) (*options.Options, error) {
	body := ro.ConfigBody
	if ro.ConfigPath != "" {
		b, err := specs.ReadLimited(ro.ConfigPath, maxOptionsSize, "runtime options file")
		if err != nil {
			return nil, fmt.Errorf("runtime options: ConfigPath %q: %w", ro.ConfigPath, err)
		}
		body = b
	}
	if len(body) == 0 {
		return nil, nil
	}
	var t tomlOptions

	dec := toml.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		var sme *toml.StrictMissingError
		if errors.As(err, &sme) {
			return nil, fmt.Errorf("runtime options: unknown option(s) for the husk shim: %s", strings.ReplaceAll(strings.TrimSpace(sme.String()), "\n", "; "))
		}
		return nil, fmt.Errorf("runtime options: %w", err)
	}
	if t.CriuPath != "" {
		// runc's options type has no CriuPath any more either: criu is run from PATH.
		return nil, errors.New("runtime options: CriuPath is not supported by the husk shim: it runs criu from PATH")
	}
	return &options.Options{
		BinaryName: t.BinaryName, Root: t.Root, SystemdCgroup: t.SystemdCgroup, NoPivotRoot: t.NoPivotRoot,
		NoNewKeyring: t.NoNewKeyring, ShimCgroup: t.ShimCgroup, IoUid: t.IoUid, IoGid: t.IoGid,
		CriuImagePath: t.CriuImagePath, CriuWorkPath: t.CriuWorkPath,
		TaskApiAddress: t.TaskApiAddress, TaskApiVersion: t.TaskApiVersion,
	}, nil
}
