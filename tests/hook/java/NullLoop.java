/*
 * usnet hook tests: a hot loop that relies on the JVM's implicit null
 * checks.  Once compiled, `b.v` on a null b is a load from a small address
 * that must fault (SIGSEGV), which the JVM turns into a
 * NullPointerException; a readable page 0 would hand back garbage instead.
 * Prints the number of exceptions caught and a sum of what was read: the
 * same with and without the hook.
 */
public class NullLoop {
    static final class Box {
        int v;
        Box(int v) { this.v = v; }
    }

    static int get(Box b) {
        return b.v;
    }

    public static void main(String[] args) {
        int want = args.length > 0 ? Integer.parseInt(args[0]) : 100000;
        Box[] boxes = new Box[64];
        for (int i = 0; i < boxes.length; i++)
            boxes[i] = i % 8 == 0 ? null : new Box(i);
        long sum = 0;
        int caught = 0;
        for (int i = 0; caught < want; i++) {
            try {
                sum += get(boxes[i & 63]);
            } catch (NullPointerException e) {
                caught++;
            }
        }
        System.out.println("caught " + caught + " NullPointerExceptions; sum " + sum);
    }
}
