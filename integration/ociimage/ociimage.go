// Package ociimage builds small OCI images of a static busybox, for tests and benchmarks: as
// archives that ctr imports (Write), or served by a read-only registry (Registry) that
// containerd pulls from as a mirror, for suites that pull by name (critest).
package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// File is a file an image adds on top of busybox.
type File struct {
	Path     string // relative to the root
	Mode     int64  // permission and setuid bits
	UID, GID int
	Data     []byte
	Dir      bool
	Link     string // a hard link to this path (relative to the root)
}

// Spec describes an image: busybox, then Files as a second layer, with the image config's
// process fields.
type Spec struct {
	Entrypoint, Cmd []string
	User            string
	Files           []File
}

// Image is a built image: its manifest's digest and every blob it refers to (manifest included).
type Image struct {
	Manifest string
	Blobs    map[string][]byte
}

// Builder builds images that share one busybox layer.
type Builder struct {
	busybox     []byte // gzipped layer
	busyboxDiff string
}

// NewBuilder reads the static busybox and builds its layer: /bin with every applet, the
// usual top-level directories, and a passwd and group with root, www-data and nobody.
func NewBuilder(busybox string) (*Builder, error) {
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return nil, fmt.Errorf("reading busybox: %w", err)
	}
	applets, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("listing %s's applets: %w", busybox, err)
	}
	files := []File{}
	for _, d := range []string{"bin", "etc", "tmp", "proc", "sys", "dev", "root", "var", "var/run"} {
		mode := int64(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		files = append(files, File{Path: d, Dir: true, Mode: mode})
	}
	files = append(files, File{Path: "bin/busybox", Mode: 0o755, Data: bb})
	// Applets are hard links, as in busybox's own images: a masked /bin/ls masks ls only.
	for _, a := range strings.Fields(string(applets)) {
		if a != "busybox" {
			files = append(files, File{Path: "bin/" + a, Link: "bin/busybox", Mode: 0o755})
		}
	}
	files = append(files,
		File{Path: "etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")},
		File{Path: "etc/group", Mode: 0o644, Data: []byte("root:x:0:\nwww-data:x:33:\nnobody:x:65534:\n")})
	gz, diff, err := layer(files)
	if err != nil {
		return nil, err
	}
	return &Builder{busybox: gz, busyboxDiff: diff}, nil
}

// layer writes files as a gzipped tar.
func layer(files []File) (gz []byte, diffID string, err error) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, f := range files {
		h := &tar.Header{Name: f.Path, Mode: f.Mode, Uid: f.UID, Gid: f.GID, ModTime: time.Unix(0, 0)}
		switch {
		case f.Dir:
			h.Typeflag, h.Name = tar.TypeDir, f.Path+"/"
		case f.Link != "":
			h.Typeflag, h.Linkname = tar.TypeLink, f.Link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, "", fmt.Errorf("writing %s into the layer: %w", f.Path, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.Data); err != nil {
				return nil, "", fmt.Errorf("writing %s into the layer: %w", f.Path, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", fmt.Errorf("writing the layer: %w", err)
	}
	sum := sha256.Sum256(raw.Bytes())
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(raw.Bytes())
	zw.Close()
	return out.Bytes(), "sha256:" + hex.EncodeToString(sum[:]), nil
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// Build builds the image spec describes.
func (b *Builder) Build(spec Spec) (*Image, error) {
	img := &Image{Blobs: map[string][]byte{}}
	add := func(data []byte) string {
		d := digestOf(data)
		img.Blobs[d] = data
		return d
	}
	type desc = map[string]any
	layers := []desc{{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": add(b.busybox), "size": len(b.busybox)}}
	diffIDs := []string{b.busyboxDiff}
	if len(spec.Files) > 0 {
		gz, diff, err := layer(spec.Files)
		if err != nil {
			return nil, err
		}
		layers = append(layers, desc{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": add(gz), "size": len(gz)})
		diffIDs = append(diffIDs, diff)
	}
	cfg := desc{"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}
	if spec.Cmd != nil {
		cfg["Cmd"] = spec.Cmd
	}
	if spec.Entrypoint != nil {
		cfg["Entrypoint"] = spec.Entrypoint
	}
	if spec.User != "" {
		cfg["User"] = spec.User
	}
	config, _ := json.Marshal(desc{
		"architecture": "amd64", "os": "linux", "config": cfg,
		"rootfs": desc{"type": "layers", "diff_ids": diffIDs},
	})
	manifest, _ := json.Marshal(desc{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": desc{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": add(config), "size": len(config)},
		"layers": layers,
	})
	img.Manifest = add(manifest)
	return img, nil
}

// Write writes an OCI image archive into dir of a busybox rootfs named name (entry "sh" gives
// a shell image, "sleep" a pause image that sleeps forever) and returns its path.
func Write(dir, name, entry, busybox string) (string, error) {
	b, err := NewBuilder(busybox)
	if err != nil {
		return "", err
	}
	spec := Spec{Cmd: []string{"/bin/sh"}}
	if entry == "sleep" {
		spec.Cmd = []string{"/bin/sleep", "2147483647"}
	}
	img, err := b.Build(spec)
	if err != nil {
		return "", err
	}
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
		"manifests": []any{map[string]any{
			"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": img.Manifest, "size": len(img.Blobs[img.Manifest]),
			"platform":    map[string]any{"architecture": "amd64", "os": "linux"},
			"annotations": map[string]string{"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name[strings.LastIndex(name, ":")+1:]},
		}},
	})
	path := filepath.Join(dir, strings.NewReplacer("/", "_", ":", "_").Replace(name)+".tar")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	ow := tar.NewWriter(f)
	put := func(name string, data []byte) {
		ow.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))})
		ow.Write(data)
	}
	put("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	put("index.json", index)
	for d, b := range img.Blobs {
		put("blobs/sha256/"+strings.TrimPrefix(d, "sha256:"), b)
	}
	if err := ow.Close(); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}
