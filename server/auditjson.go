package server

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/minkms/minkms/api"
)

// appendAuditJSON appends rec as json.Marshal encodes it, byte for byte,
// without reflection: the audit trail encodes a record per request, and
// encoding/json was most of the trail's cost under load. A record with
// per-action batch counts, or a time encoding/json would refuse, goes
// through json.Marshal.
func appendAuditJSON(buf []byte, rec *api.AuditRecord) ([]byte, error) {
	if rec.Batch != nil || rec.Time.Year() < 0 || rec.Time.Year() > 9999 {
		line, err := json.Marshal(*rec) // a copy: rec itself does not escape
		if err != nil {
			return buf, err
		}
		return append(buf, line...), nil
	}
	buf = append(buf, `{"time":"`...)
	buf = rec.Time.AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, `","node":`...)
	buf = appendJSONString(buf, rec.Node)
	if rec.Seq != 0 {
		buf = append(buf, `,"seq":`...)
		buf = strconv.AppendUint(buf, rec.Seq, 10)
	}
	buf = appendStringField(buf, `,"request_id":`, rec.RequestID)
	buf = appendStringField(buf, `,"identity":`, rec.Identity)
	buf = appendStringField(buf, `,"enclave":`, rec.Enclave)
	buf = appendStringField(buf, `,"action":`, rec.Action)
	buf = appendStringField(buf, `,"object":`, rec.Object)
	buf = appendStringField(buf, `,"method":`, rec.Method)
	buf = appendStringField(buf, `,"path":`, rec.Path)
	if rec.Status != 0 {
		buf = append(buf, `,"status":`...)
		buf = strconv.AppendInt(buf, int64(rec.Status), 10)
	}
	if rec.Duration != 0 {
		buf = append(buf, `,"duration":`...)
		buf = strconv.AppendInt(buf, int64(rec.Duration), 10)
	}
	buf = appendStringField(buf, `,"remote":`, rec.Remote)
	buf = appendStringField(buf, `,"notice":`, rec.Notice)
	buf = appendStringField(buf, `,"msg":`, rec.Message)
	if rec.Lost != 0 {
		buf = append(buf, `,"lost":`...)
		buf = strconv.AppendUint(buf, rec.Lost, 10)
	}
	return append(buf, '}'), nil
}

// appendStringField appends an omitempty string field: key (with its
// leading comma and colon) and value, if the value is not empty.
func appendStringField(buf []byte, key, value string) []byte {
	if value == "" {
		return buf
	}
	return appendJSONString(append(buf, key...), value)
}

const hexDigits = "0123456789abcdef"

// jsonSafe tells the ASCII bytes appendJSONString copies as they are: one
// load per byte instead of six comparisons, on the path every audit record
// takes.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendJSONString appends s as a JSON string the way encoding/json does:
// with HTML characters (<, >, &) escaped, invalid UTF-8 replaced by
// U+FFFD, and U+2028 and U+2029 escaped.
func appendJSONString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\b':
				buf = append(buf, '\\', 'b')
			case '\f':
				buf = append(buf, '\\', 'f')
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
