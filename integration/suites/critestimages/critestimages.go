// Package critestimages builds the images Kubernetes' CRI validation suite (critest v1.37.0)
// pulls, from the static busybox and the imagetool stand-ins, under the names critest asks
// for: no registry image is downloaded.
package critestimages

import (
	"fmt"
	"os"

	"github.com/husk-runtime/husk/integration/ociimage"
)

// SandboxImage is the pods' sandbox image containerd pulls, served by Registry.
const SandboxImage = "registry.k8s.io/pause:3.10"

// Registry builds the images critest pulls, served under the names it pulls them by.
func Registry(busybox, tool string) (*ociimage.Registry, error) {
	b, err := ociimage.NewBuilder(busybox)
	if err != nil {
		return nil, err
	}
	toolData, err := os.ReadFile(tool)
	if err != nil {
		return nil, fmt.Errorf("reading imagetool: %w", err)
	}
	const staging = "gcr.io/k8s-staging-cri-tools/"
	dir := func(p string) ociimage.File { return ociimage.File{Path: p, Dir: true, Mode: 0o755} }
	sh := func(user string, files ...ociimage.File) ociimage.Spec {
		return ociimage.Spec{Cmd: []string{"sh"}, User: user, Files: files}
	}
	marker := func(name string) ociimage.Spec { return sh("", ociimage.File{Path: name, Mode: 0o644}) }
	server := func(name, listen string) ociimage.Spec {
		// "master process" in its command line: critest looks for nginx's master by it.
		return ociimage.Spec{
			Entrypoint: []string{"/usr/sbin/" + name, "-g", "daemon off; master process", "-listen", listen},
			Files:      []ociimage.File{dir("usr"), dir("usr/sbin"), {Path: "usr/sbin/" + name, Mode: 0o755, Data: toolData}},
		}
	}
	// Named pause, not sleep: critest looks for its own sleep with pgrep in a pod's pid namespace.
	pause := func(files ...ociimage.File) ociimage.Spec {
		return ociimage.Spec{Entrypoint: []string{"/pause"}, Files: append(files, ociimage.File{Path: "pause", Mode: 0o755, Data: toolData})}
	}
	predefinedGroup := sh("1000",
		ociimage.File{Path: "etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\ndefault-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n")},
		ociimage.File{Path: "etc/group", Mode: 0o644, Data: []byte("root:x:0:\nwww-data:x:33:\nnobody:x:65534:\ndefault-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n")})
	images := []struct {
		spec ociimage.Spec
		refs []string // tag "*": any tag
	}{
		{sh("", ociimage.File{Path: "bin/pgrep", Mode: 0o755, Data: toolData}, ociimage.File{Path: "bin/ipcs", Link: "bin/pgrep", Mode: 0o755}),
			[]string{"registry.k8s.io/e2e-test-images/busybox:*"}},
		// Two registries' names for one image (critest removes it by one and checks the other),
		// and the sandbox image, another one.
		{pause(), []string{"registry.k8s.io/pause:3.9", "k8s.gcr.io/pause:3.9"}},
		{pause(ociimage.File{Path: "sandbox", Mode: 0o644}), []string{SandboxImage}},
		{server("nginx", ":80"), []string{"registry.k8s.io/e2e-test-images/nginx:*"}},
		{server("httpd", ":80"), []string{"registry.k8s.io/e2e-test-images/httpd:*"}},
		{server("nginx", ":12003"), []string{staging + "hostnet-nginx-amd64:*"}},
		{ociimage.Spec{
			Entrypoint: []string{"/usr/local/bin/nnp"},
			Files:      []ociimage.File{dir("usr"), dir("usr/local"), dir("usr/local/bin"), {Path: "usr/local/bin/nnp", Mode: 0o4755, Data: toolData}},
		}, []string{"registry.k8s.io/e2e-test-images/nonewprivs:*"}},
		{sh("1002"), []string{staging + "test-image-user-uid:*"}},
		{sh("www-data"), []string{staging + "test-image-user-username:*"}},
		{sh("1003:1004"), []string{staging + "test-image-user-uid-group:*"}},
		{sh("www-data:1004"), []string{staging + "test-image-user-username-group:*"}},
		{predefinedGroup, []string{staging + "test-image-predefined-group:*"}},
		{marker("test-image-latest"), []string{staging + "test-image-latest:latest"}},
		{marker("test-image-1"), []string{staging + "test-image-1:latest"}},
		{marker("test-image-2"), []string{staging + "test-image-2:latest"}},
		{marker("test-image-3"), []string{staging + "test-image-3:latest"}},
		{marker("same-image"), []string{staging + "test-image-tags:1", staging + "test-image-tags:2", staging + "test-image-tags:3"}},
		{marker("test"), []string{staging + "test-image-tag:test"}},
		{marker("all"), []string{staging + "test-image-tag:all"}},
	}
	reg := ociimage.NewRegistry()
	for _, img := range images {
		built, err := b.Build(img.spec)
		if err != nil {
			return nil, err
		}
		for _, ref := range img.refs {
			reg.Add(ref, built)
		}
	}
	return reg, nil
}
