package kms

// SetEnvelopeFormat makes s write envelopes of format 1 or 2, so that the
// tests pin format 1 and the benchmarks measure it beside format 2. It is
// compiled into the tests only: a build writes format 2.
func SetEnvelopeFormat(s *Service, format int) { s.envelopeFormat = format }
