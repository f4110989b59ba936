package main

import (
	"fmt"
	"os"
	"time"

	"github.com/opsbook/opsbook/internal/testbin"
	"github.com/opsbook/opsbook/internal/testbin/cluster"
)

// newCluster prepares real `opsbook serve` nodes (the binary built from
// this tree) on dsn serving the workspace ws; start them with Start.
// Remove the returned directory when done.
func newCluster(dsn, ws string, ttl time.Duration, args ...string) (*cluster.Cluster, string, error) {
	bin, err := testbin.Build()
	if err != nil {
		return nil, "", err
	}
	data, err := os.MkdirTemp("", "opsbook-bench-ha-data-")
	if err != nil {
		return nil, "", err
	}
	return &cluster.Cluster{Bin: bin, DSN: dsn, Workspace: ws, Data: data, TTL: ttl, Args: args}, data, nil
}

// startNodes starts nodes A, B, C … with workers workers each.
func startNodes(c *cluster.Cluster, n, workers int) ([]*cluster.Node, error) {
	var nodes []*cluster.Node
	for i := range n {
		node, err := c.Start(string(rune('A'+i)), workers)
		if err != nil {
			return nil, fmt.Errorf("%w\n%s", err, c.Logs())
		}
		nodes = append(nodes, node)
	}
	return nodes, nil
}
