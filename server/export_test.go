package server

// SweepStalls advances s's stall guard by n ticks, as n seconds would,
// and returns how many requests it still watches.
func SweepStalls(s *Server, n int) int {
	for range n {
		s.stalls.sweep()
	}
	return s.stalls.inFlight()
}

// StallsInFlight returns how many requests s's stall guard watches.
func StallsInFlight(s *Server) int { return s.stalls.inFlight() }

// StallTimeouts returns after how many ticks the guard cuts a request's
// reads and writes.
func StallTimeouts(s *Server) (read, write int) {
	return int(s.stalls.readTicks), int(s.stalls.writeTicks)
}

// StallsWatching returns how many requests for path s's stall guard
// watches.
func StallsWatching(s *Server, path string) int {
	g := s.stalls
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for c := g.head; c != nil; c = c.stallNext {
		if c.path == path {
			n++
		}
	}
	return n
}
