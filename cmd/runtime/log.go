package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/husk-runtime/husk/specs"
)

// logger writes runc-style log lines: logrus JSON ({"level","msg","time"}) or text.
type logger struct {
	f     *os.File
	json  bool
	debug bool
}

var log = &logger{}

func setupLog(path, format string, debug bool) error {
	switch format {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format %q: must be text or json", format)
	}
	log.json = format == "json"
	log.debug = debug
	if path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644)
		if err != nil {
			return fmt.Errorf("--log %s: %w", path, err)
		}
		log.f = f
	}
	return nil
}

func (l *logger) write(level, msg string) {
	if l.f == nil {
		return // stderr already gets errors from fatal; do not print them twice
	}
	now := time.Now().Format(time.RFC3339Nano)
	if l.json {
		b, _ := json.Marshal(map[string]string{"level": level, "msg": msg, "time": now})
		l.f.Write(append(b, '\n'))
		return
	}
	fmt.Fprintf(l.f, "time=%q level=%s msg=%q\n", now, level, msg)
}

func logError(msg string) { log.write("error", msg) }

// logDebug writes a debug line when --debug is set: to the log, or in logrus' text format on
// stderr without one, as runc does.
func logDebug(format string, args ...any) {
	if log.debug {
		msg := fmt.Sprintf(format, args...)
		if log.f == nil {
			fmt.Fprintf(os.Stderr, "time=%q level=debug msg=%q\n", time.Now().Format(time.RFC3339Nano), msg)
			return
		}
		log.write("debug", msg)
	}
}

// debugHook is libcontainer's Debug option: nil unless --debug is set.
func debugHook() func(string) {
	if !log.debug {
		return nil
	}
	return func(msg string) { logDebug("%s", msg) }
}

// warnUnraisableAmbient warns, as runc does, about ambient capabilities the process will not
// get because they are not both permitted and inheritable.
func warnUnraisableAmbient(p *rspec.Process) {
	if unknown := specs.UnknownCapabilities(p.Capabilities); len(unknown) > 0 {
		logWarn("ignoring unknown or unavailable capabilities: [%s]", strings.Join(unknown, " "))
	}
	for _, name := range specs.UnraisableAmbient(p.Capabilities) {
		logWarn("can't raise ambient capability %s: it is not in both the permitted and inheritable sets", name)
	}
}

// warnLine is libcontainer's Container.Warn: a warning in the log (stderr without --log).
func warnLine(msg string) { logWarn("%s", msg) }

func logWarn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if log.f == nil {
		fmt.Fprintln(os.Stderr, "husk: warning: "+msg)
		return
	}
	log.write("warning", msg)
}
