# The one server of the bench: the throwaway sshd on loopback (or the
# latency proxy in front of it; BENCH_SSH_PORT says which).
server "127.0.0.1", roles: %w[web app db], primary: true
