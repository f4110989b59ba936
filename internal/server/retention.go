package server

import "context"

// ApplyRetention deletes finished runs beyond the newest keep per runbook
// and environment, with their events. The audit log is never touched: its
// entries about deleted runs stay, and its chain stays intact.
func (s *Server) ApplyRetention(ctx context.Context, keep int) (int, error) {
	groups, err := s.store.RunGroups(ctx)
	if err != nil {
		return 0, err
	}
	deleted := 0
	for _, g := range groups {
		ids, err := s.store.RunsBeyond(ctx, g[0], g[1], keep)
		if err != nil {
			return deleted, err
		}
		for _, id := range ids {
			if err := s.store.DeleteRun(ctx, id); err != nil {
				return deleted, err
			}
			deleted++
		}
	}
	return deleted, nil
}
