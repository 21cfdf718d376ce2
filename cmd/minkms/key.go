package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/minkms/minkms/api"
	"github.com/spf13/cobra"
)

func (c *cli) keyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Create, inspect, rotate and use keys",
		Long: `Create, inspect, rotate and delete the keys of an enclave, and use them to
encrypt, decrypt, generate data keys and compute HMACs.

The commands act in the enclave named by --enclave (or MINKMS_ENCLAVE,
"default" if neither is set), using its native routes.`,
		Example: `  minkms key create my-key
  minkms key encrypt my-key 'hello world' --context bucket=photos
  minkms key ls --enclave tenant-1`,
	}
	enclave := enclaveFlag(cmd)
	cmd.AddCommand(
		c.keyCreate(enclave),
		c.keyImport(enclave),
		c.listCommand(listing{
			short:   "List keys",
			long:    `List the names of all keys, or of those that start with PREFIX, in order.`,
			example: "  minkms key ls\n  minkms key ls app- --json",
			source:  c.inEnclave(enclave, (*api.Enclave).ListKeys),
		}),
		c.keyStat(enclave),
		c.keyRotate(enclave),
		c.keyRemove(enclave),
		c.keyEncrypt(enclave),
		c.keyDecrypt(enclave),
		c.keyDEK(enclave),
		c.keyHMAC(enclave),
		c.keyRewrap(enclave), // rewrap.go
	)
	return cmd
}

// enclaveOf returns the SDK handle of the enclave a command acts in.
type enclaveOf func(*cobra.Command) string

func (c *cli) enclave(cmd *cobra.Command, name enclaveOf) (*api.Enclave, error) {
	client, err := c.client(cmd)
	if err != nil {
		return nil, err
	}
	return client.Enclave(name(cmd)), nil
}

func (c *cli) keyCreate(enclave enclaveOf) *cobra.Command {
	var algorithm string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a new key",
		Long: `Create a new key of random key material. The algorithm is AES256 (the
default) or ChaCha20. It fails if a key of that name exists.`,
		Example: `  minkms key create my-key
  minkms key create my-key --algorithm ChaCha20`,
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().StringVar(&algorithm, "algorithm", "AES256", "AES256 or ChaCha20")
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		e, err := c.enclave(cmd, enclave)
		if err != nil {
			return err
		}
		info, err := e.CreateKey(cmd.Context(), args[0], &api.CreateKeyRequest{Algorithm: algorithm})
		if err != nil {
			return err
		}
		return c.printKeyCreated(out, "Created", info)
	}
	return cmd
}

func (c *cli) printKeyCreated(out *output, verb string, info *api.KeyInfo) error {
	if out.json {
		return writeJSON(c.stdout, info)
	}
	_, err := fmt.Fprintf(c.stdout, "%s key %s (%s)\n", verb, info.Name, info.Algorithm)
	return err
}

func (c *cli) keyImport(enclave enclaveOf) *cobra.Command {
	var keyB64, keyFile, cipher string
	cmd := &cobra.Command{
		Use:   "import NAME",
		Short: "Import existing key material as a new key",
		Long: `Import 32 bytes of key material, given in standard base64 with --key or in
a file with --key-file, as a new key. --cipher says how it is used: AES256
(the default) or ChaCha20. It fails if a key of that name exists.

Prefer --key-file: a key on the command line may be seen by other users of
the machine.`,
		Example: `  head -c 32 /dev/urandom | base64 > my-key.b64
  minkms key import my-key --key-file my-key.b64`,
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().StringVar(&keyB64, "key", "", "the key material, standard base64")
	cmd.Flags().StringVar(&keyFile, "key-file", "", "a file holding the key material in standard base64")
	cmd.Flags().StringVar(&cipher, "cipher", "AES256", "AES256 or ChaCha20")
	cmd.MarkFlagsMutuallyExclusive("key", "key-file")
	cmd.MarkFlagsOneRequired("key", "key-file")
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		text := []byte(keyB64)
		if keyFile != "" {
			data, err := os.ReadFile(keyFile)
			if err != nil {
				return fmt.Errorf("read key: %w", err)
			}
			text = data
		}
		defer clear(text) // decoded from bytes, never copied into a string
		text = bytes.TrimSpace(text)
		key := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
		defer clear(key)
		n, err := base64.StdEncoding.Decode(key, text)
		if err != nil {
			return errors.New("the key is not standard base64")
		}
		key = key[:n]
		e, err := c.enclave(cmd, enclave)
		if err != nil {
			return err
		}
		info, err := e.ImportKey(cmd.Context(), args[0], &api.ImportKeyRequest{Key: key, Cipher: cipher})
		if err != nil {
			return err
		}
		return c.printKeyCreated(out, "Imported", info)
	}
	return cmd
}

// printNames prints a listing: one name a line, or {"names": [...]}.
func (c *cli) printNames(out *output, names []string) error {
	if out.json {
		return writeJSON(c.stdout, &api.ListResponse{Names: names})
	}
	for _, n := range names {
		if _, err := fmt.Fprintln(c.stdout, n); err != nil {
			return err
		}
	}
	return nil
}

func (c *cli) keyStat(enclave enclaveOf) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "stat NAME",
		Aliases: []string{"describe"},
		Short:   "Show a key and its versions",
		Long: `Show a key: its algorithm, the version that encrypts, and every version
with when and by whom it was created.`,
		Example: `  minkms key stat my-key`,
		Args:    cobra.ExactArgs(1),
	}
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		e, err := c.enclave(cmd, enclave)
		if err != nil {
			return err
		}
		info, err := e.DescribeKey(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		if out.json {
			return writeJSON(c.stdout, info)
		}
		fmt.Fprintf(c.stdout, "Name:       %s\nAlgorithm:  %s\nVersion:    %d\nCreated:    %s\n\n",
			info.Name, info.Algorithm, info.Version, createdBy(info.CreatedAt, info.CreatedBy))
		t := newTable(c.stdout, "VERSION", "ALGORITHM", "CREATED", "CREATED BY")
		for _, v := range info.Versions {
			t.row(v.Version, v.Algorithm, when(v.CreatedAt), orDash(v.CreatedBy))
		}
		return t.flush()
	}
	return cmd
}

func (c *cli) keyRotate(enclave enclaveOf) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rotate NAME",
		Short: "Add a new version to a key",
		Long: `Add a new version of fresh key material to a key. The new version encrypts
from now on; the older versions still decrypt what they encrypted.`,
		Example: `  minkms key rotate my-key`,
		Args:    cobra.ExactArgs(1),
	}
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		e, err := c.enclave(cmd, enclave)
		if err != nil {
			return err
		}
		resp, err := e.RotateKey(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		if out.json {
			return writeJSON(c.stdout, resp)
		}
		_, err = fmt.Fprintf(c.stdout, "Rotated key %s: version %d encrypts now\n", args[0], resp.Version)
		return err
	}
	return cmd
}

func (c *cli) keyRemove(enclave enclaveOf) *cobra.Command {
	var version int
	cmd := &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"delete"},
		Short:   "Delete a key or one of its versions",
		Long: `Delete a key with all its versions, or with --version only that version.
What the deleted key material encrypted can never be decrypted again.`,
		Example: `  minkms key rm my-key
  minkms key rm my-key --version 1`,
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().IntVar(&version, "version", 0, "delete only this version")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if cmd.Flags().Changed("version") && version < 1 {
			return fmt.Errorf("--version %d is not a key version (1, 2, ...)", version)
		}
		e, err := c.enclave(cmd, enclave)
		if err != nil {
			return err
		}
		if cmd.Flags().Changed("version") {
			if err := e.DeleteKeyVersion(cmd.Context(), args[0], version); err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.stdout, "Deleted version %d of key %s\n", version, args[0])
			return err
		}
		if err := e.DeleteKey(cmd.Context(), args[0]); err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.stdout, "Deleted key %s\n", args[0])
		return err
	}
	return cmd
}

// contextFlag adds --context, the associated data of the AEAD operations.
func contextFlag(cmd *cobra.Command) *string {
	s := new(string)
	cmd.Flags().StringVar(s, "context", "", "associated data that the ciphertext is bound to; decrypt needs the same")
	return s
}

// contextBytes returns the bytes of a --context value, nil for none.
func contextBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

// argOrStdin returns arg, or standard input if arg is "-".
func (c *cli) argOrStdin(arg string) ([]byte, error) {
	if arg != "-" {
		return []byte(arg), nil
	}
	data, err := io.ReadAll(io.LimitReader(c.stdin, 1<<20+1))
	if err != nil {
		return nil, fmt.Errorf("read standard input: %w", err)
	}
	if len(data) > 1<<20 {
		clear(data)
		return nil, errors.New("standard input is larger than 1 MiB")
	}
	return data, nil
}

func (c *cli) keyEncrypt(enclave enclaveOf) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "encrypt NAME PLAINTEXT",
		Short: "Encrypt a value",
		Long: `Encrypt PLAINTEXT ("-" reads standard input) under the newest version of a
key and print the ciphertext in standard base64. With --context the
ciphertext is bound to that value: decrypting needs the same context.`,
		Example: `  minkms key encrypt my-key 'hello world'
  echo -n secret | minkms key encrypt my-key - --context user=42`,
		Args: cobra.ExactArgs(2),
	}
	assoc := contextFlag(cmd)
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		plaintext, err := c.argOrStdin(args[1])
		if err != nil {
			return err
		}
		defer clear(plaintext)
		e, err := c.enclave(cmd, enclave)
		if err != nil {
			return err
		}
		ciphertext, err := e.Encrypt(cmd.Context(), args[0], plaintext, contextBytes(*assoc))
		if err != nil {
			return err
		}
		if out.json {
			return writeJSON(c.stdout, &api.EncryptKeyResponse{Ciphertext: ciphertext})
		}
		_, err = fmt.Fprintln(c.stdout, base64.StdEncoding.EncodeToString(ciphertext))
		return err
	}
	return cmd
}

func (c *cli) keyDecrypt(enclave enclaveOf) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "decrypt NAME CIPHERTEXT",
		Short: "Decrypt a value",
		Long: `Decrypt a standard base64 CIPHERTEXT ("-" reads it from standard input)
of a key and print the plaintext. --context must be the context it was
encrypted with. Every failure to decrypt gives the same error.`,
		Example: `  minkms key decrypt my-key "$CIPHERTEXT"
  minkms key decrypt my-key "$CIPHERTEXT" --context user=42 --json`,
		Args: cobra.ExactArgs(2),
	}
	assoc := contextFlag(cmd)
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		text, err := c.argOrStdin(args[1])
		if err != nil {
			return err
		}
		ciphertext, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(text)))
		if err != nil {
			return errors.New("the ciphertext is not standard base64")
		}
		e, err := c.enclave(cmd, enclave)
		if err != nil {
			return err
		}
		plaintext, err := e.Decrypt(cmd.Context(), args[0], ciphertext, contextBytes(*assoc))
		if err != nil {
			return err
		}
		defer clear(plaintext)
		if out.json {
			return writeJSON(c.stdout, &api.DecryptKeyResponse{Plaintext: plaintext})
		}
		_, err = fmt.Fprintf(c.stdout, "%s\n", plaintext)
		return err
	}
	return cmd
}

func (c *cli) keyDEK(enclave enclaveOf) *cobra.Command {
	var length int
	cmd := &cobra.Command{
		Use:   "dek NAME",
		Short: "Generate a data encryption key",
		Long: `Generate a fresh data encryption key of --length bytes (default 32) and
print it in plaintext and encrypted under the key, both in standard base64.
Use the plaintext, store the ciphertext, and ask minkms to decrypt it when
the data key is needed again.`,
		Example: `  minkms key dek my-key
  minkms key dek my-key --context object=photo.jpg --length 16 --json`,
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().IntVar(&length, "length", 0, "data key length in bytes, 16 to 1024 (default 32)")
	assoc := contextFlag(cmd)
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		e, err := c.enclave(cmd, enclave)
		if err != nil {
			return err
		}
		dek, err := e.GenerateKey(cmd.Context(), args[0], contextBytes(*assoc), length)
		if err != nil {
			return err
		}
		defer clear(dek.Plaintext)
		if out.json {
			return writeJSON(c.stdout, dek)
		}
		t := newTable(c.stdout)
		t.row("plaintext", base64.StdEncoding.EncodeToString(dek.Plaintext))
		t.row("ciphertext", base64.StdEncoding.EncodeToString(dek.Ciphertext))
		return t.flush()
	}
	return cmd
}

func (c *cli) keyHMAC(enclave enclaveOf) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hmac NAME MESSAGE",
		Short: "Compute an HMAC of a message",
		Long: `Compute the HMAC-SHA256 of MESSAGE ("-" reads standard input) under a key
derived from the named key, and print it in standard base64. The same key
and message always give the same HMAC.`,
		Example: `  minkms key hmac my-key 'user@example.com'`,
		Args:    cobra.ExactArgs(2),
	}
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		message, err := c.argOrStdin(args[1])
		if err != nil {
			return err
		}
		defer clear(message)
		e, err := c.enclave(cmd, enclave)
		if err != nil {
			return err
		}
		sum, err := e.HMAC(cmd.Context(), args[0], message)
		if err != nil {
			return err
		}
		if out.json {
			return writeJSON(c.stdout, &api.HMACResponse{HMAC: sum})
		}
		_, err = fmt.Fprintln(c.stdout, base64.StdEncoding.EncodeToString(sum))
		return err
	}
	return cmd
}
