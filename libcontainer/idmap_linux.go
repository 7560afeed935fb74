package libcontainer

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/internal/children"
	"github.com/husk-runtime/husk/internal/idmap"
	"github.com/husk-runtime/husk/libcontainer/initproto"
	"github.com/husk-runtime/husk/libcontainer/rootfs"
	"github.com/husk-runtime/husk/specs"
)

// Idmapped mounts (mount options idmap/ridmap, or a mount with uidMappings/gidMappings, as
// runc 1.2+ and the runtime spec have them; containerd 2.x gives user-namespaced pods their
// volumes this way): husk clones the source with open_tree, sets MOUNT_ATTR_IDMAP on the clone
// with a user namespace made for the mount's mappings, and the init attaches the clone with
// move_mount (bindMount). The mappings read as the spec's: containerID -> hostID, so files a
// host id owns appear owned by the container id.

// detachedMounts clones the sources of the bind mounts the init cannot bind itself: all of them
// in a user namespace (its root may not reach a source the host's root can, and a bind from
// husk's namespace is refused), and the idmapped ones always. Keys are mount indexes. A source
// inside the rootfs is not cloned here but listed in late: it may be (or sit under) a mount the
// init makes first (runc 1.5's mount-order tests bind a tree of container mounts onto another
// place), so the init asks for it when it gets there (initproto.MountSource, lateMountSource), and
// the clone is made in its mount namespace, as runc does for every source.
func detachedMounts(mon children.Monitor, s *rspec.Spec, bundle, rootfsDir string) (out map[string]*os.File, late []int, err error) {
	userns := specs.HasNamespace(s.Linux.Namespaces, rspec.UserNamespace) // new, or joined (a pod's)
	if !userns && !hasIDMappedMount(s) {
		return nil, nil, nil // the common container: nothing to clone
	}
	out = map[string]*os.File{}
	fail := func(err error) (map[string]*os.File, []int, error) {
		for _, f := range out {
			f.Close()
		}
		return nil, nil, err
	}
	rootfsDir = filepath.Clean(rootfsDir)
	for i, m := range s.Mounts {
		if !specs.IsBind(m) {
			continue
		}
		opts, err := specs.ParseMountOptions(m.Options)
		if err != nil {
			return fail(err)
		}
		idmapped := opts.IDMap || len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0
		if !userns && !idmapped {
			continue
		}
		if src := mountSourcePath(m, bundle); src == rootfsDir || strings.HasPrefix(src, rootfsDir+"/") {
			late = append(late, i)
			continue
		}
		f, err := cloneMountSource(mon, s, bundle, "", i)
		if err != nil {
			if !idmapped {
				continue // the init reports it, with its own words
			}
			return fail(err)
		}
		out[strconv.Itoa(i)] = f
	}
	return out, late, nil
}

// mountSourcePath is a bind mount's source as an absolute, clean path.
func mountSourcePath(m rspec.Mount, bundle string) string {
	if !filepath.IsAbs(m.Source) {
		return filepath.Join(bundle, m.Source)
	}
	return filepath.Clean(m.Source)
}

// cloneMountSource clones the source of bind mount i (open_tree, the submounts too for rbind)
// as the calling thread's mount namespace sees it, idmapped where the mount asks for it. With a
// rootfs, the source lies inside it and resolves inside it: a symlink of the image cannot make
// it name a host path.
func cloneMountSource(mon children.Monitor, s *rspec.Spec, bundle, rootfsDir string, i int) (*os.File, error) {
	m := s.Mounts[i]
	opts, err := specs.ParseMountOptions(m.Options)
	if err != nil {
		return nil, err
	}
	src := mountSourcePath(m, bundle)
	dirfd, path, flags := unix.AT_FDCWD, src, uint(unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if opts.Recursive {
		flags |= unix.AT_RECURSIVE
	}
	if rootfsDir != "" {
		in, err := rootfs.OpenSource(rootfsDir, src)
		if err != nil {
			return nil, fmt.Errorf("mounts[%d] (%q): source %q: %w", i, m.Destination, m.Source, err)
		}
		defer in.Close()
		dirfd, path, flags = int(in.Fd()), "", flags|unix.AT_EMPTY_PATH
	}
	fd, err := unix.OpenTree(dirfd, path, flags)
	if err != nil {
		return nil, fmt.Errorf("mounts[%d] (%q): source %q: %w", i, m.Destination, m.Source, err)
	}
	f := os.NewFile(uintptr(fd), src)
	if opts.IDMap || len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0 {
		// As runc 1.5: "idmap" (or mappings alone) maps the top mount only, "ridmap" the
		// submounts of an rbind too.
		if err := idmapTree(mon, f, s, m, opts.RecursiveIDMap); err != nil {
			f.Close()
			return nil, fmt.Errorf("mounts[%d] (%q): idmap: %w", i, m.Destination, err)
		}
	}
	return f, nil
}

// sendLateMountSource answers the init's MountSource for mount index: the source is cloned
// on a thread that joined the init's mount namespace (before pivot_root its paths are the
// host's, with the container's mounts made so far), and sent with MountSourceFd. A failure
// goes back in the message, for the init to report.
func sendLateMountSource(mon children.Monitor, pipe *initproto.Conn, initPid int, s *rspec.Spec, bundle, rootfsDir string, late []int, index int) error {
	if !slices.Contains(late, index) {
		return fmt.Errorf("protocol error: the init asked for the source of mounts[%d]", index)
	}
	mntns, err := os.Open(fmt.Sprintf("/proc/%d/ns/mnt", initPid))
	if err != nil {
		return fmt.Errorf("mounts[%d]: open the init's mount namespace: %w", index, err)
	}
	defer mntns.Close()
	var tree *os.File
	err = startLocked([]*os.File{mntns}, func() error {
		var err error
		tree, err = cloneMountSource(mon, s, bundle, rootfsDir, index)
		return err
	})
	if err != nil {
		return pipe.SendMountSource(-1, err)
	}
	defer tree.Close()
	return pipe.SendMountSource(int(tree.Fd()), nil)
}

// idmapTree sets MOUNT_ATTR_IDMAP on a detached tree, with the mount's own mappings or, where
// it has none, the container's user namespace: its mappings, or the namespace it joins.
func idmapTree(mon children.Monitor, tree *os.File, s *rspec.Spec, m rspec.Mount, recursive bool) error {
	var ns *os.File
	var err error
	switch {
	case len(m.UIDMappings) > 0:
		ns, err = userNamespaceFor(mon, m.UIDMappings, m.GIDMappings)
	case joinedUserNamespace(s) != "":
		ns, err = openNamespace(rspec.UserNamespace, joinedUserNamespace(s))
	default:
		ns, err = userNamespaceFor(mon, s.Linux.UIDMappings, s.Linux.GIDMappings)
	}
	if err != nil {
		return err
	}
	defer ns.Close()
	flags := uint(unix.AT_EMPTY_PATH)
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns.Fd())}
	if err := unix.MountSetattr(int(tree.Fd()), "", flags, attr); err != nil {
		return fmt.Errorf("mount_setattr: %w", err)
	}
	return nil
}

// joinedUserNamespace is the path of the user namespace the container joins, "" if none.
func joinedUserNamespace(s *rspec.Spec) string {
	for _, n := range s.Linux.Namespaces {
		if n.Type == rspec.UserNamespace {
			return n.Path
		}
	}
	return ""
}

// userNamespaceFor returns a user namespace with these mappings (see internal/idmap), its
// helper started and waited for by mon.
func userNamespaceFor(mon children.Monitor, uids, gids []rspec.LinuxIDMapping) (*os.File, error) {
	return idmap.UserNamespace(idMaps(uids), idMaps(gids), mon)
}

// hasIDMappedMount reports whether the spec has an idmapped mount (made by the Go init's parent).
func hasIDMappedMount(s *rspec.Spec) bool {
	for _, m := range s.Mounts {
		if len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0 {
			return true
		}
		for _, o := range m.Options {
			if o == "idmap" || o == "ridmap" {
				return true
			}
		}
	}
	return false
}
