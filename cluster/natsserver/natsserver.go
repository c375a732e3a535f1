// Package natsserver runs a NATS server with JetStream inside the process, for
// the demo and the tests; a production cluster runs its own NATS servers.
package natsserver

import (
	"errors"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Embedded is a NATS server with JetStream inside this process: for the demo
// and tests. A production cluster runs its own NATS servers.
type Embedded struct {
	*server.Server
}

// Start starts a NATS server with JetStream storing in dir, on host
// and port (-1: a random port), without monitoring, clustering or leaf nodes.
func Start(dir, host string, port int) (*Embedded, error) {
	s, err := server.NewServer(&server.Options{
		ServerName: "switchyard-embedded", Host: host, Port: port,
		JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true,
	})
	if err != nil {
		return nil, err
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, errors.New("natsserver: embedded NATS server not ready within 10s")
	}
	return &Embedded{Server: s}, nil
}

// URL is the server's client URL.
func (e *Embedded) URL() string { return e.ClientURL() }

// Shutdown stops the server and waits until it stopped.
func (e *Embedded) Shutdown() {
	e.Server.Shutdown()
	e.WaitForShutdown()
}
