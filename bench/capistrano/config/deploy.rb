# The same work as relflip's deploy in scripts/bench-capistrano.sh, the way a
# Capistrano 3 user would write it: the git strategy (the server fetches
# from BENCH_REPO_URL into its repo/ mirror and `git archive`s the branch
# into the release), linked dirs and files for relflip's shared_dirs and
# shared_files, keep_releases 5, a migrate task after deploy:updated, a
# restart task (HUP to gunicorn) after deploy:publishing, and the health
# check relflip's expect_revision makes: the app must answer with the
# revision now in current/REVISION. deploy:publishing runs for
# deploy:rollback too, so a rollback restarts and checks alike.
#
# Everything that differs between runs comes from the environment, set by
# the bench: BENCH_REPO_URL, BENCH_DEPLOY_TO, BENCH_TMP_DIR, BENCH_LOG,
# BENCH_APP_PORT, BENCH_SSH_PORT, BENCH_SSH_KEY, BENCH_KNOWN_HOSTS.
lock "~> 3.17"

set :application, "benchapp"
set :repo_url, ENV.fetch("BENCH_REPO_URL")
set :branch, "main"
set :deploy_to, ENV.fetch("BENCH_DEPLOY_TO")
set :tmp_dir, ENV.fetch("BENCH_TMP_DIR")
set :keep_releases, 5
set :linked_dirs, %w[log tmp/pids db]
set :linked_files, %w[.env]
set :pty, false
set :format_options, log_file: ENV.fetch("BENCH_LOG"), color: false, truncate: false

set :app_port, ENV.fetch("BENCH_APP_PORT")

# net-ssh checks the sshd's host key against the bench's known_hosts file and
# refuses a missing or changed one, as relflip and the bare script do.
set :ssh_options, {
  user: "root",
  port: Integer(ENV.fetch("BENCH_SSH_PORT")),
  keys: [ENV.fetch("BENCH_SSH_KEY")],
  keys_only: true,
  auth_methods: %w[publickey],
  config: false,
  use_agent: false,
  forward_agent: false,
  user_known_hosts_file: ENV.fetch("BENCH_KNOWN_HOSTS"),
  global_known_hosts_file: "/dev/null",
  verify_host_key: :always,
  non_interactive: true,
  timeout: 10,
}

namespace :deploy do
  desc "Run the migrate step (records the revision in db/app.sqlite3)"
  task :migrate do
    on roles(:db) do
      within release_path do
        execute :python3, "migrate.py"
      end
    end
  end

  # BENCH_BOOTSTRAP: the bench's first deploy, made before gunicorn runs (the
  # bench starts gunicorn from the release it makes): nothing to restart or
  # check yet.
  desc "Reload gunicorn: HUP makes it chdir to current again and start new workers"
  task :restart do
    next if ENV["BENCH_BOOTSTRAP"]
    on roles(:web) do
      execute :kill, "-HUP", "\"$(cat #{shared_path}/tmp/pids/gunicorn-#{fetch(:app_port)}.pid)\""
    end
  end

  desc "Health check: the app answers 200 with the revision in current/REVISION"
  task :health do
    next if ENV["BENCH_BOOTSTRAP"]
    on roles(:web) do
      # Every 0.1 s, at most 100 tries: relflip's interval 0.1 and retries 100.
      execute %(want=$(cat #{current_path}/REVISION) && i=0 && ) +
              %(until curl -fsS --max-time 5 http://127.0.0.1:#{fetch(:app_port)}/health 2>/dev/null | grep -qF "$want"; do ) +
              %(i=$((i + 1)); [ $i -le 100 ] || { echo "unhealthy: want $want" >&2; exit 1; }; sleep 0.1; done)
    end
  end

  after :updated, :migrate
  after :publishing, :restart
  after :restart, :health
end
