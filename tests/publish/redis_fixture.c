#include "redis_fixture.h"

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <ftw.h>
#include <time.h>
#include <unistd.h>

int its_redis_available(void)
{
    const char *path = getenv("PATH");
    if (!path)
        return 0;
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        char exe[4200];
        snprintf(exe, sizeof exe, "%s/redis-server", d);
        if (access(exe, X_OK) == 0)
            return 1;
    }
    return 0;
}

int its_redis_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int ping(const its_redis_fixture *r)
{
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return -1;
    }
    int ok = 0;
    redisReply *rep;
    if (r->password[0]) {
        rep = redisCommand(c, "AUTH %s", r->password);
        if (rep)
            freeReplyObject(rep);
    }
    rep = redisCommand(c, "PING");
    ok = rep && rep->type == REDIS_REPLY_STATUS && !strcmp(rep->str, "PONG");
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    return ok ? 0 : -1;
}

int its_redis_start(its_redis_fixture *r)
{
    if (!r->port)
        r->port = its_redis_free_port();
    if (r->port <= 0)
        return -1;
    if (!r->dir[0]) {
        snprintf(r->dir, sizeof r->dir, "/tmp/its-redis-XXXXXX");
        if (!mkdtemp(r->dir))
            return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        char log[256], port[16];
        snprintf(log, sizeof log, "%s/redis.log", r->dir);
        snprintf(port, sizeof port, "%d", r->port);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        const char *argv[20] = {"redis-server",
                                "--port",
                                port,
                                "--bind",
                                "127.0.0.1",
                                "--save",
                                "",
                                "--appendonly",
                                r->persist ? "yes" : "no",
                                "--dir",
                                r->dir,
                                "--daemonize",
                                "no"};
        int n = 13;
        if (r->persist) {
            argv[n++] = "--appendfsync";
            argv[n++] = "always";
        }
        if (r->password[0]) {
            argv[n++] = "--requirepass";
            argv[n++] = r->password;
        }
        argv[n] = NULL;
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    r->pid = pid;
    for (int i = 0; i < 250; i++) {
        if (ping(r) == 0)
            return 0;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            r->pid = 0;
            return -1;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    its_redis_stop(r, SIGKILL);
    return -1;
}

void its_redis_stop(its_redis_fixture *r, int sig)
{
    if (r->pid <= 0)
        return;
    kill(r->pid, sig);
    kill(r->pid, SIGCONT); /* a stopped server (SIGSTOP tests) must see the signal */
    int st;
    waitpid(r->pid, &st, 0);
    r->pid = 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void its_redis_cleanup(its_redis_fixture *r)
{
    its_redis_stop(r, SIGKILL);
    if (r->dir[0] && !strncmp(r->dir, "/tmp/its-redis-", 15))
        nftw(r->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    r->dir[0] = 0;
}
