package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDevClusterDiesWithSupervisor kills a supervisor with SIGKILL, which
// it cannot handle, and shows that its nodes end anyway (Pdeathsig).
func TestDevClusterDiesWithSupervisor(t *testing.T) {
	if os.Getenv("MINKMS_TEST_SUPERVISOR") == "1" {
		superviseSleepers()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDevClusterDiesWithSupervisor$")
	cmd.Env = append(os.Environ(), "MINKMS_TEST_SUPERVISOR=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the supervisor printed no pids: %v", err)
	}
	fields := strings.Fields(line) // dir pid pid pid
	if len(fields) != 4 {
		t.Fatalf("supervisor printed %q", line)
	}
	t.Cleanup(func() { os.RemoveAll(fields[0]) }) // a killed supervisor cannot remove it
	var pids []int
	for _, f := range fields[1:] {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	}
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatalf("node %d is not running before the supervisor is killed", pid)
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	waitFor(t, 10*time.Second, func() bool {
		for _, pid := range pids {
			if alive(pid) {
				return false
			}
		}
		return true
	})
}

// superviseSleepers runs a supervisor of three sleeping nodes, prints its
// directory and their pids, and waits to be killed.
func superviseSleepers() {
	d, err := newDevCluster(3, devBasePort, devOptions{}, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	d.command = sleeper
	if err := d.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%s %d %d %d\n", d.Dir, d.Nodes[0].PID(), d.Nodes[1].PID(), d.Nodes[2].PID())
	time.Sleep(time.Minute)
	d.Stop()
	os.Exit(1)
}

// alive reports whether process pid runs: it exists and is no zombie (a
// container's init may not reap orphans).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
