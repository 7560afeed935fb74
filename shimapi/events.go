package shimapi

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	eventsapi "github.com/containerd/containerd/api/services/ttrpc/events/v1"
	apitypes "github.com/containerd/containerd/api/types"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Event topics containerd expects from a task shim.
const (
	topicCreate      = "/tasks/create"
	topicStart       = "/tasks/start"
	topicExit        = "/tasks/exit"
	topicDelete      = "/tasks/delete"
	topicExecAdded   = "/tasks/exec-added"
	topicExecStarted = "/tasks/exec-started"
	topicPaused      = "/tasks/paused"
	topicResumed     = "/tasks/resumed"
	topicOOM         = "/tasks/oom"
)

// publisher forwards events to containerd over ttrpc (TTRPC_ADDRESS), in order, from one
// goroutine, retrying a few times as containerd's own publisher does.
type publisher struct {
	ns      string
	address string
	queue   chan *eventsapi.ForwardRequest
	client  *ttrpc.Client
	dropped atomic.Uint64 // events dropped on a full queue
}

func newPublisher(address, ns string) *publisher {
	p := &publisher{ns: ns, address: address, queue: make(chan *eventsapi.ForwardRequest, 2048)}
	go p.loop()
	return p
}

func (p *publisher) publish(topic string, event any) {
	a, err := typeurl.MarshalAnyToProto(event)
	if err != nil {
		return
	}
	req := &eventsapi.ForwardRequest{Envelope: &apitypes.Envelope{
		Timestamp: timestamppb.Now(), Namespace: p.ns, Topic: topic, Event: a,
	}}
	// Callers hold the service lock: when containerd is away long enough to fill the queue,
	// drop the event rather than stall every request (containerd re-reads state on reconnect).
	select {
	case p.queue <- req:
	default:
		// stderr is containerd's log fifo for this shim; say it once per hundred drops.
		if n := p.dropped.Add(1); n%100 == 1 {
			fmt.Fprintf(os.Stderr, "containerd-shim-husk-v2: event queue full, %d event(s) dropped (last: %s)\n", n, topic)
		}
	}
}

func (p *publisher) loop() {
	for req := range p.queue {
		for attempt := 0; attempt < 5; attempt++ {
			if err := p.forward(req); err == nil {
				break
			}
			if p.client != nil {
				p.client.Close()
				p.client = nil
			}
			time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
		}
	}
}

func (p *publisher) forward(req *eventsapi.ForwardRequest) error {
	if p.address == "" {
		return nil // no containerd to tell (tests that drive the shim directly)
	}
	if p.client == nil {
		conn, err := net.DialTimeout("unix", p.address, 5*time.Second)
		if err != nil {
			return err
		}
		p.client = ttrpc.NewClient(conn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := eventsapi.NewTTRPCEventsClient(p.client).Forward(ctx, req)
	return err
}

// drain waits (briefly) until queued events are sent, before the shim exits.
func (p *publisher) drain() {
	for i := 0; i < 100 && len(p.queue) > 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
}
