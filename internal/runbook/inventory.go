package runbook

// Host is one machine of an environment's inventory.
type Host struct {
	Name    string            `json:"name" yaml:"name"`
	Address string            `json:"address" yaml:"address"`               // DNS name or IP
	Port    int               `json:"port,omitempty" yaml:"port,omitempty"` // 0 means 22
	User    string            `json:"user,omitempty" yaml:"user,omitempty"`
	Tags    map[string]string `json:"tags,omitempty" yaml:"tags,omitempty"`
	Bastion string            `json:"bastion,omitempty" yaml:"bastion,omitempty"` // name of another host to jump through
}

// Matches reports whether the host carries every tag of the selector.
// An empty selector matches every host.
func (t Target) Matches(h Host) bool {
	for k, v := range t.Selector {
		if h.Tags[k] != v {
			return false
		}
	}
	return true
}
