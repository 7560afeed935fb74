// Package hooks runs OCI hooks: in order, the container state on stdin, each with its timeout,
// started and waited for by a children.Monitor.
package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/husk-runtime/husk/internal/children"
)

// Run runs hooks in order with the container state on stdin, started and waited for by
// mon (nil: directly); the first failure stops them.
func Run(mon children.Monitor, hooks []rspec.Hook, phase string, st *rspec.State) error {
	return RunIn(mon, "", hooks, phase, st)
}

// RunIn is Run with dir as the hooks' working directory ("": husk's own).
func RunIn(mon children.Monitor, dir string, hooks []rspec.Hook, phase string, st *rspec.State) error {
	if len(hooks) == 0 {
		return nil
	}
	state, err := json.Marshal(st)
	if err != nil {
		return err
	}
	for i, h := range hooks {
		if err := runHook(mon, h, state, dir); err != nil {
			return fmt.Errorf("error running %s hook #%d: %q: %w", phase, i, h.Path, err) // runc's words
		}
	}
	return nil
}

// RunWarn runs every hook of a phase whose failure the spec says must not stop the
// lifecycle (poststart, poststop): each failure goes to warn and the next hook runs.
func RunWarn(mon children.Monitor, hooks []rspec.Hook, phase string, st *rspec.State, warn func(string)) {
	if len(hooks) == 0 {
		return
	}
	state, err := json.Marshal(st)
	if err != nil {
		warn(fmt.Sprintf("%s hooks: %v", phase, err))
		return
	}
	for i, h := range hooks {
		if err := runHook(mon, h, state, ""); err != nil && warn != nil {
			warn(fmt.Sprintf("error running %s hook #%d: %q: %v", phase, i, h.Path, err))
		}
	}
}

func runHook(mon children.Monitor, h rspec.Hook, state []byte, dir string) error {
	ctx := context.Background()
	if h.Timeout != nil {
		if *h.Timeout <= 0 {
			return fmt.Errorf("timeout must be positive, got %d", *h.Timeout)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, h.Path)
	if len(h.Args) > 0 {
		cmd.Args = h.Args
	} else {
		cmd.Args = []string{h.Path}
	}
	cmd.Env = h.Env
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(state)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := children.Or(mon).Run(cmd)
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("timed out after %ds", *h.Timeout)
	}
	if err != nil {
		if msg := strings.TrimSpace(out.String()); msg != "" {
			return fmt.Errorf("%w: %q", err, msg)
		}
		return err
	}
	return nil
}
