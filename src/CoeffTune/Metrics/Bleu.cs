using System.Text;
using System.Text.RegularExpressions;

namespace CoeffTune.Metrics;

/// <summary>
/// A corpus BLEU score as sacreBLEU reports it: <see cref="Score"/> in 0..100, the four modified n-gram precisions
/// (percent, after smoothing), the brevity penalty, and the counts behind them.
/// </summary>
public sealed record BleuScore(double Score, IReadOnlyList<double> Precisions, double BrevityPenalty, long HypothesisLength, long ReferenceLength,
    IReadOnlyList<long> Correct, IReadOnlyList<long> Total)
{
    /// <summary>e.g. "BLEU = 37.99 83.3/60.0/25.0/16.7 (BP = 1.000 ratio = 1.000 hyp_len = 6 ref_len = 6)", sacreBLEU's line.</summary>
    public override string ToString() =>
        FormattableString.Invariant($"BLEU = {Score:0.00} {string.Join("/", Precisions.Select(p => p.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture)))} (BP = {BrevityPenalty:0.000} ratio = {(ReferenceLength == 0 ? 0 : (double)HypothesisLength / ReferenceLength):0.000} hyp_len = {HypothesisLength} ref_len = {ReferenceLength})");
}

/// <summary>
/// BLEU-4 as sacreBLEU computes corpus BLEU by default: the "13a" tokenisation (mteval-v13a's), no lowercasing,
/// n-grams clipped by their largest count in any reference, the reference length closest to each hypothesis (the
/// shorter on a tie), the "exp" smoothing (the k-th n-gram order with no match gets 1 / (2^k * total)), and the
/// brevity penalty exp(1 - r/c) when the corpus' hypotheses are shorter than its references.
/// </summary>
public static class Bleu
{
    public const int MaxOrder = 4;

    // mteval-v13a's language-dependent rules, as sacreBLEU's TokenizerRegexp applies them, in order.
    private static readonly (Regex Pattern, string Replacement)[] Rules =
    {
        // Punctuation and symbols: { | } ~ [ \ ] ^ _ ` space ! " # $ % & ( ) * + : ; < = > ? @ /
        (new Regex(@"([\{-\~\[-\` -\&\(-\+\:-\@\/])", RegexOptions.CultureInvariant), " $1 "),
        // Period and comma unless preceded by a digit,
        (new Regex(@"([^0-9])([\.,])", RegexOptions.CultureInvariant), "$1 $2 "),
        // ... unless followed by a digit,
        (new Regex(@"([\.,])([^0-9])", RegexOptions.CultureInvariant), " $1 $2"),
        // and a dash preceded by a digit.
        (new Regex(@"([0-9])(-)", RegexOptions.CultureInvariant), "$1 $2 "),
    };

    /// <summary>sacreBLEU's "13a" tokenisation of one line; the tokens are separated by single spaces.</summary>
    public static string Tokenize13a(string line)
    {
        line = line.Replace("<skipped>", "").Replace("-\n", "").Replace("\n", " ");
        if (line.Contains('&'))
            line = line.Replace("&quot;", "\"").Replace("&amp;", "&").Replace("&lt;", "<").Replace("&gt;", ">");
        line = " " + line + " ";
        foreach (var (pattern, replacement) in Rules) line = pattern.Replace(line, replacement);
        return string.Join(' ', SplitWhitespace(line));
    }

    /// <summary>Python's str.split(): runs of whitespace (Unicode's, and the separators U+001C..U+001F) separate tokens.</summary>
    private static IEnumerable<string> SplitWhitespace(string s)
    {
        var token = new StringBuilder();
        foreach (var c in s)
        {
            if (char.IsWhiteSpace(c) || (c >= '\u001c' && c <= '\u001f'))
            {
                if (token.Length > 0) { yield return token.ToString(); token.Clear(); }
            }
            else token.Append(c);
        }
        if (token.Length > 0) yield return token.ToString();
    }

    /// <summary>Corpus BLEU with one reference per hypothesis.</summary>
    public static BleuScore Corpus(IReadOnlyList<string> hypotheses, IReadOnlyList<string> references) =>
        Corpus(hypotheses, references.Select(r => (IReadOnlyList<string>)new[] { r }).ToList());

    /// <summary>Corpus BLEU; <paramref name="references"/>[i] holds the references of hypothesis i (one or more).</summary>
    public static BleuScore Corpus(IReadOnlyList<string> hypotheses, IReadOnlyList<IReadOnlyList<string>> references)
    {
        if (hypotheses.Count != references.Count)
            throw new ArgumentException($"BLEU needs one reference set per hypothesis: {hypotheses.Count} hypotheses, {references.Count} reference sets");
        var correct = new long[MaxOrder];
        var total = new long[MaxOrder];
        long hypLength = 0, refLength = 0;
        for (int i = 0; i < hypotheses.Count; i++)
        {
            if (references[i].Count == 0) throw new ArgumentException($"hypothesis {i} has no reference");
            var hyp = Tokenize13a(hypotheses[i]).Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var refs = references[i].Select(r => Tokenize13a(r).Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
            hypLength += hyp.Length;
            int closest = refs[0].Length, closestDiff = int.MaxValue;
            foreach (var r in refs)
            {
                int diff = Math.Abs(hyp.Length - r.Length);
                if (diff < closestDiff) (closestDiff, closest) = (diff, r.Length);
                else if (diff == closestDiff) closest = Math.Min(closest, r.Length);
            }
            refLength += closest;
            for (int n = 1; n <= MaxOrder; n++)
            {
                var maxRef = new Dictionary<string, int>();
                foreach (var r in refs)
                    foreach (var (gram, count) in NGrams(r, n))
                        maxRef[gram] = Math.Max(maxRef.GetValueOrDefault(gram), count);
                foreach (var (gram, count) in NGrams(hyp, n))
                {
                    correct[n - 1] += Math.Min(count, maxRef.GetValueOrDefault(gram));
                    total[n - 1] += count;
                }
            }
        }
        return Compute(correct, total, hypLength, refLength);
    }

    private static Dictionary<string, int> NGrams(string[] tokens, int n)
    {
        var counts = new Dictionary<string, int>();
        for (int i = 0; i + n <= tokens.Length; i++)
        {
            var gram = string.Join('\u0001', tokens, i, n);
            counts[gram] = counts.GetValueOrDefault(gram) + 1;
        }
        return counts;
    }

    /// <summary>sacreBLEU's compute_bleu with smooth_method "exp" and effective_order false.</summary>
    public static BleuScore Compute(long[] correct, long[] total, long hypLength, long refLength)
    {
        var precisions = new double[MaxOrder];
        double smooth = 1;
        for (int n = 1; n <= MaxOrder; n++)
        {
            if (total[n - 1] == 0) break;
            if (correct[n - 1] == 0)
            {
                smooth *= 2;
                precisions[n - 1] = 100.0 / (smooth * total[n - 1]);
            }
            else precisions[n - 1] = 100.0 * correct[n - 1] / total[n - 1];
        }
        double bp = hypLength < refLength ? (hypLength > 0 ? Math.Exp(1 - (double)refLength / hypLength) : 0) : 1;
        // sacreBLEU's my_log: log(0) is -9999999999, so an order with no n-gram at all gives a score of 0.
        double logSum = precisions.Sum(p => p == 0 ? -9999999999.0 : Math.Log(p));
        double score = bp * Math.Exp(logSum / MaxOrder);
        return new BleuScore(score, precisions, bp, hypLength, refLength, correct, total);
    }
}
