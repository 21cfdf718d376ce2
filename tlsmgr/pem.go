package tlsmgr

import (
	"bytes"
	"encoding/pem"
	"fmt"
)

// decodePEM decodes every PEM block of data strictly: the file must be a
// sequence of complete blocks separated by white space. Anything else — a
// truncated block, text before, between or after the blocks — is an error,
// so that a half-written file never becomes a silently shorter chain or CA
// pool. The error says what was wrong and where, never what the bytes were.
// On error the blocks decoded so far are cleared: they may be a key.
func decodePEM(data []byte) (_ []*pem.Block, err error) {
	var blocks []*pem.Block
	defer func() {
		if err != nil {
			for _, b := range blocks {
				clear(b.Bytes)
			}
		}
	}()
	rest := data
	for {
		trimmed := bytes.TrimLeft(rest, " \t\r\n")
		if len(trimmed) == 0 {
			break
		}
		offset := len(data) - len(trimmed)
		if !bytes.HasPrefix(trimmed, []byte("-----BEGIN ")) {
			if len(blocks) == 0 {
				return nil, fmt.Errorf("not PEM: unexpected data at byte %d", offset)
			}
			return nil, fmt.Errorf("trailing data after PEM block %d at byte %d", len(blocks), offset)
		}
		block, r := pem.Decode(trimmed)
		// pem.Decode skips a broken block and returns the next good one;
		// a strict reader must not.
		consumed := trimmed[:len(trimmed)-len(r)]
		if block == nil || bytes.Count(consumed, []byte("-----BEGIN ")) != 1 {
			return nil, fmt.Errorf("truncated or malformed PEM block %d at byte %d", len(blocks)+1, offset)
		}
		blocks = append(blocks, block)
		rest = r
	}
	return blocks, nil
}
