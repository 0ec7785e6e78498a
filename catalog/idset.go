package catalog

// idSet is a set of 64-bit id hashes with open addressing. A Go map of
// uint64 costs ~40 bytes per id once bucket overhead and growth are counted;
// this costs 8–16, and holds no pointers, so the garbage collector never
// scans it. That keeps `feed build` near flat in memory from 100k to 1M
// variants.
type idSet struct {
	slots []uint64 // 0 marks an empty slot
	n     int
}

// add inserts h and reports whether it was new.
func (s *idSet) add(h uint64) bool {
	if h == 0 {
		h = 1 // 0 marks empty slots
	}
	if s.n >= len(s.slots)*3/4 {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case 0:
			s.slots[i] = h
			s.n++
			return true
		case h:
			return false
		}
	}
}

func (s *idSet) grow() {
	old := s.slots
	size := max(len(old)*2, 1<<14)
	s.slots, s.n = allocSlots(size), 0
	for _, h := range old {
		if h != 0 {
			s.add(h)
		}
	}
	freeSlots(old)
}

// free releases the set's memory; the set is empty and usable afterwards.
func (s *idSet) free() {
	freeSlots(s.slots)
	s.slots, s.n = nil, 0
}
