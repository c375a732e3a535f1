package config

import (
	"strings"
	"testing"
	"time"
)

const clusterBase = `devices:
  - {name: psu-1, address: "127.0.0.1:5025", driver: scpi, tags: {area: vac},
     channels: [{name: v, query: "V?", period: 1s}]}
`

func TestClusterSection(t *testing.T) {
	c, err := Parse("ok.yaml", []byte(clusterBase+`cluster:
  urls: [nats://127.0.0.1:4222, tls://nats.lab:4222]
  node: n1
  may_own: [{area: "va*"}]
  lease_ttl: 6s
`))
	if err != nil {
		t.Fatal(err)
	}
	cc := c.ClusterConfig("")
	if cc.Node != "n1" || len(cc.URLs) != 2 || cc.Timing.LeaseTTL != 6*time.Second || cc.Timing.RenewEvery != 1500*time.Millisecond {
		t.Errorf("cluster config %+v", cc)
	}
	if !cc.Selectors[0].Matches(c.DeviceRefs()[0].Tags) {
		t.Error("may_own area va* should match psu-1 (area vac)")
	}
	if got := c.ClusterConfig("n2").Node; got != "n2" {
		t.Errorf("--node override: %q", got)
	}
	if c, _ := Parse("single.yaml", []byte(clusterBase)); c.Cluster != nil {
		t.Error("no cluster section: Cluster must be nil (a single node)")
	}
}

func TestClusterSectionErrors(t *testing.T) {
	_, err := Parse("bad.yaml", []byte(clusterBase+`cluster:
  urls: ["http://x:1"]
  node: "n 1"
  may_own: [{area: "[v"}]
  lease_ttl: 3s
  stop_margin: 4s
  tls: {cert: a.pem}
`))
	if err == nil {
		t.Fatal("bad cluster section accepted")
	}
	for _, want := range []string{
		"bad.yaml:5: cluster.urls[0]: want nats://host:port or tls://host:port",
		"bad.yaml:6: cluster.node: must not contain blanks",
		"bad.yaml:7: cluster.may_own[0].area: bad glob",
		"cluster.lease_ttl: stop_margin: must be below lease_ttl",
		"cluster.tls: cert and key go together",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
}
