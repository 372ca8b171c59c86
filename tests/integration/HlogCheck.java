// HlogCheck: reads a loadgen .hlog with HdrHistogram's own HistogramLogReader (Debian's
// libhdrhistogram-java), adds each tag's intervals, and prints one line per tag:
//   tag count min min_hi max max_lo p50 p99 p99.9 intervals
// min and max are what the decoded histogram says (the lowest value of the first bucket, the
// highest of the last); min_hi and max_lo close those buckets, so a caller can check that its
// own exact min and max fall in them. test_hlog.py compiles and runs it.
import java.util.Map;
import java.util.TreeMap;
import org.HdrHistogram.EncodableHistogram;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.HistogramLogReader;

public class HlogCheck {
    public static void main(String[] args) throws Exception {
        HistogramLogReader reader = new HistogramLogReader(args[0]);
        Map<String, Histogram> sums = new TreeMap<>();
        Map<String, Integer> intervals = new TreeMap<>();
        EncodableHistogram e;
        while ((e = reader.nextIntervalHistogram()) != null) {
            Histogram h = (Histogram) e;
            String tag = h.getTag() == null ? "-" : h.getTag();
            sums.computeIfAbsent(tag, t -> new Histogram(1L, 60000000000L, 3)).add(h);
            intervals.merge(tag, 1, Integer::sum);
        }
        for (Map.Entry<String, Histogram> s : sums.entrySet()) {
            Histogram h = s.getValue();
            System.out.printf("%s %d %d %d %d %d %d %d %d %d%n", s.getKey(), h.getTotalCount(),
                    h.getMinValue(), h.highestEquivalentValue(h.getMinValue()), h.getMaxValue(),
                    h.lowestEquivalentValue(h.getMaxValue()), h.getValueAtPercentile(50),
                    h.getValueAtPercentile(99), h.getValueAtPercentile(99.9),
                    intervals.get(s.getKey()));
        }
        System.out.println("start " + reader.getStartTimeSec());
    }
}
