package ociimage

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Registry serves images read-only over the registry API (the part a pull uses: /v2/,
// manifests and blobs by GET and HEAD). containerd reaches it as a mirror (hosts.toml), which
// names the upstream registry in the ns query parameter, so one Registry serves several; a
// client pulling from it directly names it by its own address ("127.0.0.1:port/repo:tag").
type Registry struct {
	mu     sync.Mutex
	tags   map[string]string // "host/repo:tag" -> manifest digest; tag "*" matches any tag
	blobs  map[string][]byte
	Logger func(format string, args ...any)
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{tags: map[string]string{}, blobs: map[string][]byte{}}
}

// Add serves img under ref ("host/repo:tag", tag "*" for any tag).
func (r *Registry) Add(ref string, img *Image) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tags[ref] = img.Manifest
	for d, b := range img.Blobs {
		r.blobs[d] = b
	}
}

func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if r.Logger != nil {
		r.Logger("%s %s", req.Method, req.URL)
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		http.Error(w, "read-only registry", http.StatusMethodNotAllowed)
		return
	}
	path := strings.TrimPrefix(req.URL.Path, "/v2/")
	if path == "" || path == req.URL.Path {
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		return
	}
	host := req.URL.Query().Get("ns") // a mirror's upstream; pulled directly, this registry
	if host == "" {
		host = req.Host
	}
	var repo, kind, ref string
	for _, k := range []string{"/manifests/", "/blobs/"} {
		if i := strings.LastIndex(path, k); i > 0 {
			repo, kind, ref = path[:i], strings.Trim(k, "/"), path[i+len(k):]
			break
		}
	}
	r.mu.Lock()
	digest := ref
	if kind == "manifests" && !strings.HasPrefix(ref, "sha256:") {
		digest = r.tags[host+"/"+repo+":"+ref]
		if digest == "" {
			digest = r.tags[host+"/"+repo+":*"]
		}
	}
	blob, ok := r.blobs[digest]
	r.mu.Unlock()
	if kind == "" || !ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"errors":[{"code":"NOT_FOUND","message":"not served here"}]}`))
		return
	}
	if kind == "manifests" {
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	} else {
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Length", strconv.Itoa(len(blob)))
	if req.Method == http.MethodGet {
		w.Write(blob)
	}
}
