// A com.sun.net.httpserver server on the wildcard address: GET /r/N answers
// "hello N" and counts the request; GET /count answers how many came.
// usage: java HelloServer PORT
import com.sun.net.httpserver.HttpServer;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

public class HelloServer {
    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        AtomicLong served = new AtomicLong();
        Map<String, String> seen = new HashMap<>();
        HttpServer server = HttpServer.create(new InetSocketAddress(port), 128);
        server.createContext("/r/", ex -> {
            String n = ex.getRequestURI().getPath().substring(3);
            synchronized (seen) {
                seen.put(n, n);   // HashMap.get/put in the hot path (C2-compiled)
            }
            byte[] body = ("hello " + n + "\n").getBytes(StandardCharsets.US_ASCII);
            served.incrementAndGet();
            ex.sendResponseHeaders(200, body.length);
            try (OutputStream os = ex.getResponseBody()) {
                os.write(body);
            }
        });
        server.createContext("/count", ex -> {
            byte[] body;
            synchronized (seen) {
                body = (served.get() + " " + seen.size() + "\n").getBytes(StandardCharsets.US_ASCII);
            }
            ex.sendResponseHeaders(200, body.length);
            try (OutputStream os = ex.getResponseBody()) {
                os.write(body);
            }
        });
        server.start();
        System.out.println("listening on " + port);
    }
}
