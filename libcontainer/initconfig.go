package libcontainer

import (
	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/husk-runtime/husk/libcontainer/initproto"
	"github.com/husk-runtime/husk/libcontainer/rootfs"
)

// initConfig is the Go init's request (initproto.InitConfig, what travels) with its spec
// decoded.
type initConfig struct {
	initproto.InitConfig
	Spec *rspec.Spec `json:"-"` // RawSpec decoded, by the init
}

// rootfsConfig is what the rootfs builder needs of an init config.
func (cfg *initConfig) rootfsConfig(conn *initproto.Conn) *rootfs.Config {
	return &rootfs.Config{
		Spec: cfg.Spec, Rootfs: cfg.Rootfs, Bundle: cfg.Bundle, NoPivot: cfg.NoPivot,
		SharedMounts: cfg.SharedMounts, MountFds: cfg.MountFds, LateMountSources: cfg.LateMountSources,
		Conn: conn,
	}
}
