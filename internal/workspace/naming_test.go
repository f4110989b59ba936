package workspace

import (
	"strings"
	"testing"
	"time"
)

func TestDeriveName(t *testing.T) {
	tests := []struct {
		desc string
		want string // name without the date
	}{
		// English
		{"database migration from PostgreSQL 12 to 15", "postgres-upgrade-v12-to-v15"},
		{"kubernetes cluster upgrade to v1.28", "k8s-upgrade-v1.28"},
		{"CDN provider switchover from CloudFlare to AWS CloudFront", "cdn-switchover-cloudflare-to-aws"},
		{"Upgrade Kafka from 2.8 to 3.6", "kafka-upgrade-v2.8-to-v3.6"},
		{"MySQL 5.7 to 8.0 migration", "mysql-upgrade-v5.7-to-v8.0"},
		{"migrate orders database from MySQL to PostgreSQL", "mysql-migration-orders-to-postgres"},
		{"Redis cluster scale-out", "redis-scale-out-cluster"},
		{"rotate TLS certificates on nginx", "tls-rotation-nginx"},
		{"nginx TLS certificate rotation", "tls-rotation-nginx"},
		{"fail over payments database to the DR site", "db-failover-payments-to-dr"},
		{"nightly PostgreSQL backup with restore test", "postgres-backup-nightly-restore-test"},
		{"refresh test database from sanitised production data", "db-refresh-test-sanitised-production-data"},
		{"etcd restore from snapshot", "etcd-restore-snapshot"},
		{"Elasticsearch 7 to 8 upgrade", "elasticsearch-upgrade-v7-to-v8"},
		{"DNS cutover to Route53", "dns-switchover-route53"},
		{"MongoDB replica set scale in", "mongodb-scale-in-replica-set"},
		{"decommission legacy oracle server", "oracle-decommission-legacy"},
		{"Kafka broker rolling restart", "kafka-restart-broker-rolling"},
		{"RabbitMQ 3.12 upgrade", "rabbitmq-upgrade-v3.12"},
		{"load balancer config change for api gateway", "lb-config-change-api-gateway"},
		{"vault unseal keys rotation", "vault-rotation-unseal-keys"},
		{"Ceph cluster expansion add 3 nodes", "ceph-scale-out-add-3-nodes"},
		{"SQL Server 2019 to 2022 upgrade", "sqlserver-upgrade-2019-to-2022"},
		{"switchover postgres primary to replica", "postgres-switchover-primary-to-replica"},
		{"Prometheus storage migration to new disks", "prometheus-migration-storage-disks"},
		{"PostgreSQL switch back to the primary site after DR failover", "postgres-switchback-primary-site-dr-failover"},
		{"pg 14 -> 16 upgrade with pg_upgrade --link", "postgres-upgrade-v14-to-v16-link"},
		{"Rotate the TLS cert for api.example.com", "tls-rotation-api.example.com"},
		{"Upgrade the EKS cluster from 1.27 to 1.28", "k8s-upgrade-v1.27-to-v1.28"},
		{"Move the DNS zone from GoDaddy to Route53", "dns-migration-zone-godaddy-to-route53"},
		// Chinese and mixed
		{"将 PostgreSQL 从 12 升级到 15", "postgres-upgrade-v12-to-v15"},
		{"数据库迁移：PostgreSQL 12 到 15", "postgres-upgrade-v12-to-v15"},
		{"Kubernetes 集群升级到 1.28", "k8s-upgrade-v1.28"},
		{"Redis 集群扩容", "redis-scale-out-cluster"},
		{"CDN 切换 从 CloudFlare 到 AWS CloudFront", "cdn-switchover-cloudflare-to-aws"},
		{"nginx 证书轮换", "tls-rotation-nginx"},
		{"生产数据库故障转移到灾备机房", "db-failover-production-dr-dc"},
		{"PostgreSQL 12→15 大版本升级", "postgres-upgrade-v12-to-v15"},
		{"mysql 主从切换", "mysql-switchover-primary-replica"},
		{"redis 数据迁移 到 新集群", "redis-migration-cluster"},
		{"PG 测试库刷新 脱敏", "postgres-refresh-test-sanitised"},
		{"Kafka 集群从 2.8 升级至 3.6", "kafka-upgrade-v2.8-to-v3.6"},
		{"灾备切换后回切 PostgreSQL 主库", "postgres-switchback-failover-primary"},
		{"MySQL 全量备份", "mysql-backup-full"},
		{"K8s 节点扩容 add 5 nodes", "k8s-scale-out-add-5-nodes"},
	}
	date := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			n, err := DeriveName(tt.desc, NameOptions{Date: date})
			if err != nil {
				t.Fatal(err)
			}
			if got := n.String(); got != "2025-03-01-"+tt.want {
				t.Errorf("DeriveName(%q) = %s, want 2025-03-01-%s", tt.desc, got, tt.want)
			}
			if !taskNameRe().MatchString(n.String()) {
				t.Errorf("%s is not a valid task name", n)
			}
		})
	}
	if len(tests) < 40 {
		t.Errorf("the naming table has %d descriptions; keep at least 40", len(tests))
	}
}

func TestDeriveNameFlags(t *testing.T) {
	date := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		desc    string
		opts    NameOptions
		want    string
		wantErr string
	}{
		{"数据库备份", NameOptions{}, "db-backup-db", ""},
		{"数据库备份", NameOptions{Slug: "orders-nightly"}, "db-backup-orders-nightly", ""},
		{"重启 nginx", NameOptions{}, "nginx-restart-nginx", ""},
		{"something vague", NameOptions{}, "something-change-vague", ""},
		{"patch kernel on web servers", NameOptions{}, "web-patch-kernel", ""},
		{"fail over orders-db to the DR site", NameOptions{}, "orders-db-failover-to-dr", ""},
		{"fail over orders-db to the DR site", NameOptions{System: "postgres"}, "postgres-failover-orders-db-to-dr", ""},
		{"decommission the legacy ftp server", NameOptions{}, "ftp-decommission-legacy", ""},
		{"restart the app", NameOptions{}, "app-restart-app", ""},
		{"做点什么", NameOptions{}, "ops-change-ops", ""},
		{"patch kernel on web servers", NameOptions{System: "linux"}, "linux-patch-kernel-web", ""},
		{"deploy payments service v2.3.1", NameOptions{System: "payments"}, "payments-deploy-v2.3.1", ""},
		{"postgres thing", NameOptions{Operation: "vacuum"}, "postgres-vacuum-thing", ""},
		{"database migration from PostgreSQL 12 to 15", NameOptions{Operation: "migration"}, "postgres-migration-v12-to-v15", ""},
		{"x", NameOptions{System: "Bad System", Operation: "upgrade", Slug: "x"}, "", `--system "bad system": use lower-case ASCII`},
	}
	for _, tt := range tests {
		t.Run(tt.desc+"/"+tt.opts.System+tt.opts.Operation+tt.opts.Slug, func(t *testing.T) {
			tt.opts.Date = date
			n, err := DeriveName(tt.desc, tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := n.String(); got != "2025-03-01-"+tt.want {
				t.Errorf("got %s, want 2025-03-01-%s", got, tt.want)
			}
		})
	}
}

func TestParseTaskName(t *testing.T) {
	for _, name := range []string{"2025-03-01-postgres-upgrade-v12-to-v15", "2025-03-01-redis-scale-out-cluster", "2025-03-01-lb-config-change-api-gateway"} {
		n, err := ParseTaskName(name)
		if err != nil {
			t.Fatal(err)
		}
		if n.String() != name {
			t.Errorf("ParseTaskName(%s) round-trips to %s", name, n)
		}
	}
	if n, _ := ParseTaskName("2025-03-01-redis-scale-out-cluster"); n.Operation != "scale-out" {
		t.Errorf("operation = %q, want scale-out", n.Operation)
	}
	if _, err := ParseTaskName("postgres-upgrade"); err == nil {
		t.Error("a name without a date parsed")
	}
}

// A description that names no system opsbook knows takes the most specific
// name in it as the system, says so, and still finds the library runbook
// for the kind of system the name contains.
func TestDeriveNameSaysWhatItGuessed(t *testing.T) {
	n, err := DeriveName("fail over orders-db to the DR site", NameOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.System != "orders-db" || len(n.Guessed) != 1 || !strings.Contains(n.Guessed[0], `system "orders-db" is the most specific name`) {
		t.Errorf("system %q, guessed %q", n.System, n.Guessed)
	}
	if m := MatchLibrary(n); m.Name() != "postgres-dr-failover" {
		t.Errorf("library %s, want postgres-dr-failover (orders-db is a db)", m.Name())
	}
	n, err = DeriveName("fail over orders-db to the DR site", NameOptions{System: "mysql"})
	if err != nil || n.System != "mysql" || len(n.Guessed) != 0 {
		t.Errorf("--system must override and guess nothing: %+v %v", n, err)
	}
}
