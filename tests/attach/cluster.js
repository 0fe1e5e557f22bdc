// Node's cluster module: the primary forks WORKERS worker processes (new
// node images) and, with its default round-robin scheduling, accepts every
// connection itself and hands it to a worker over their IPC channel
// (SCM_RIGHTS).  Each answers "pid PID".  Prints "ready" once all listen.
// usage: node cluster.js ADDR PORT WORKERS
const cluster = require('cluster');
const http = require('http');
const [addr, port, workers] = process.argv.slice(2);
if (cluster.isPrimary) {
    cluster.schedulingPolicy = cluster.SCHED_RR;
    let listening = 0;
    for (let i = 0; i < Number(workers); i++)
        cluster.fork();
    cluster.on('listening', () => {
        if (++listening === Number(workers))
            console.log('ready');
    });
    cluster.on('exit', (w, code, signal) => console.log(`worker ${w.process.pid} exited ${code} ${signal}`));
} else {
    http.createServer((req, res) => res.end(`pid ${process.pid}\n`)).listen(Number(port), addr);
}
