package api_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/minkms/minkms/api"
)

func ExampleNewClient() {
	key, err := api.ParseAPIKey(os.Getenv("MINKMS_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	caPEM, err := os.ReadFile(os.Getenv("MINKMS_CACERT"))
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)

	client, err := api.NewClient(api.Config{
		Endpoints: []string{"https://kms-1.example.net:7373", "https://kms-2.example.net:7373", "https://kms-3.example.net:7373"},
		APIKey:    key,
		RootCAs:   roots,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := client.CreateKey(context.Background(), "my-key"); err != nil && !errors.Is(err, api.ErrKeyExists) {
		log.Fatal(err)
	}
}

func ExampleClient_GenerateKey() {
	var client *api.Client // from NewClient
	ctx := context.Background()

	// Encrypt data with the plaintext data key, store the ciphertext with it.
	dek, err := client.GenerateKey(ctx, "my-key", []byte("bucket/object"))
	if err != nil {
		log.Fatal(err)
	}
	defer clear(dek.Plaintext)

	// Later: get the data key back.
	plaintext, err := client.Decrypt(ctx, "my-key", dek.Ciphertext, []byte("bucket/object"))
	if errors.Is(err, api.ErrDecrypt) {
		log.Fatal("the ciphertext or its context was changed")
	}
	if err != nil {
		log.Fatal(err)
	}
	defer clear(plaintext)
}

func ExampleClient_Enclave() {
	var client *api.Client // from NewClient
	ctx := context.Background()

	tenant := client.Enclave("tenant-1")
	if _, err := tenant.CreateKey(ctx, "orders", &api.CreateKeyRequest{Algorithm: "ChaCha20"}); err != nil {
		log.Fatal(err)
	}
	rotated, err := tenant.RotateKey(ctx, "orders")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("version", rotated.Version, "encrypts now")
}

func ExampleEnclave_ListKeys() {
	var client *api.Client // from NewClient
	ctx := context.Background()

	// Follow ContinueAt to list every key.
	continueAt := ""
	for {
		page, err := client.Enclave("default").ListKeys(ctx, "app-", continueAt, 0)
		if err != nil {
			log.Fatal(err)
		}
		for _, name := range page.Names {
			fmt.Println(name)
		}
		if page.ContinueAt == "" {
			break
		}
		continueAt = page.ContinueAt
	}
}

func ExampleParseAPIKey() {
	key, err := api.ParseAPIKey("k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(key.Identity())
	// Output: h1:oFCDfYUHBYLM9zlLCYiEfMMSy4glm4lImfbyOc8XkaU
}

func ExampleGenerateAPIKey() {
	key, err := api.GenerateAPIKey()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("API key (secret):", key)
	fmt.Println("identity (for the admin):", key.Identity())
}

func ExampleWithConsistentReads() {
	var client *api.Client // from NewClient
	ctx := context.Background()

	if err := client.CreateKey(ctx, "app-orders"); err != nil {
		log.Fatal(err)
	}
	// Whichever node answers, the list includes the key just created.
	page, err := client.ListKeys(api.WithConsistentReads(ctx, true), "app-", "", 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(page.Names)
}
