using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace CoeffTune.Text;

/// <summary>
/// A byte-level BPE vocabulary learnt from text, as GPT-2's and BART's: every text is split by GPT-2's
/// pre-tokenisation pattern, each piece's UTF-8 bytes are written as printable characters (GPT-2's byte-to-unicode
/// table, so a space becomes 'Ġ'), and the most frequent adjacent pair of symbols is merged, again and again, until
/// the vocabulary is full. Ids follow BART's layout: &lt;s&gt; 0, &lt;pad&gt; 1, &lt;/s&gt; 2, &lt;unk&gt; 3, the 256
/// bytes, the merged symbols in the order they were learnt, and &lt;mask&gt; last. <see cref="Save"/> writes a
/// Hugging Face tokenizer folder (vocab.json, merges.txt, tokenizer_config.json and tokenizer.json) that
/// <see cref="TextTokenizer.FromFolder"/> runs with Hugging Face's own library.
/// </summary>
public sealed class BpeTrainer
{
    /// <summary>GPT-2's pre-tokenisation, as Hugging Face's ByteLevel pre-tokenizer applies it.</summary>
    public static readonly Regex PreTokenizer = new(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", RegexOptions.Compiled);

    public static readonly IReadOnlyList<string> LeadingSpecials = ["<s>", "<pad>", "</s>", "<unk>"];
    public const string MaskToken = "<mask>";

    /// <summary>GPT-2's table: byte b to one printable character (printable Latin-1 bytes stay, the rest move to 256 and up).</summary>
    public static IReadOnlyList<char> ByteToUnicode { get; } = BuildByteTable();

    private static char[] BuildByteTable()
    {
        var table = new char[256];
        var kept = new bool[256];
        foreach (var (lo, hi) in new[] { ('!', '~'), ('¡', '¬'), ('®', 'ÿ') })
            for (int b = lo; b <= hi; b++) kept[b] = true;
        int next = 0;
        for (int b = 0; b < 256; b++) table[b] = kept[b] ? (char)b : (char)(256 + next++);
        return table;
    }

    private readonly Dictionary<(string, string), int> ranks;
    private readonly Dictionary<string, int[]> wordCache = new();

    /// <summary>The merges in the order learnt (rank 0 first), as merges.txt lists them.</summary>
    public IReadOnlyList<(string Left, string Right)> Merges { get; }
    /// <summary>Token to id, special tokens included.</summary>
    public IReadOnlyDictionary<string, int> Vocab { get; }
    public int VocabSize => Vocab.Count;

    private BpeTrainer(List<(string, string)> merges)
    {
        Merges = merges;
        ranks = merges.Select((m, i) => (m, i)).ToDictionary(p => p.m, p => p.i);
        var vocab = new Dictionary<string, int>();
        foreach (var s in LeadingSpecials) vocab[s] = vocab.Count;
        foreach (var c in ByteToUnicode) vocab[c.ToString()] = vocab.Count;
        foreach (var (l, r) in merges) vocab[l + r] = vocab.Count;
        vocab[MaskToken] = vocab.Count;
        Vocab = vocab;
    }

    /// <summary>The pieces of <paramref name="text"/> in byte-level characters, as the BPE model sees them.</summary>
    public static IEnumerable<string> PreTokenize(string text)
    {
        foreach (Match m in PreTokenizer.Matches(text))
        {
            var bytes = Encoding.UTF8.GetBytes(m.Value);
            var chars = new char[bytes.Length];
            for (int i = 0; i < bytes.Length; i++) chars[i] = ByteToUnicode[bytes[i]];
            yield return new string(chars);
        }
    }

    /// <summary>
    /// Learns merges from <paramref name="texts"/> until the vocabulary holds <paramref name="vocabSize"/> tokens
    /// (4 special tokens, 256 bytes, the merges, &lt;mask&gt;), or no pair occurs twice. The most frequent pair is
    /// merged first; ties go to the pair whose symbols come first in ordinal order, so training is deterministic.
    /// </summary>
    public static BpeTrainer Train(IEnumerable<string> texts, int vocabSize)
    {
        int fixedTokens = LeadingSpecials.Count + 256 + 1;
        if (vocabSize < fixedTokens)
            throw new ArgumentOutOfRangeException(nameof(vocabSize), vocabSize, $"a byte-level BPE vocabulary needs at least {fixedTokens} tokens (specials and bytes)");
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var text in texts)
            foreach (var piece in PreTokenize(text))
                counts[piece] = counts.GetValueOrDefault(piece) + 1;

        var symbols = new List<string>();
        var symbolId = new Dictionary<string, int>(StringComparer.Ordinal);
        int Symbol(string s)
        {
            if (!symbolId.TryGetValue(s, out int id)) { id = symbols.Count; symbols.Add(s); symbolId[s] = id; }
            return id;
        }
        var words = new List<List<int>>();
        var freq = new List<int>();
        foreach (var (w, c) in counts.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            words.Add(w.Select(ch => Symbol(ch.ToString())).ToList());
            freq.Add(c);
        }
        var pairCount = new Dictionary<(int, int), long>();
        var where = new Dictionary<(int, int), HashSet<int>>();
        void Count(int wi, int sign)
        {
            var w = words[wi];
            for (int i = 0; i + 1 < w.Count; i++)
            {
                var p = (w[i], w[i + 1]);
                pairCount[p] = pairCount.GetValueOrDefault(p) + sign * (long)freq[wi];
                if (sign > 0)
                {
                    if (!where.TryGetValue(p, out var set)) where[p] = set = new HashSet<int>();
                    set.Add(wi);
                }
            }
        }
        for (int wi = 0; wi < words.Count; wi++) Count(wi, +1);

        var merges = new List<(string, string)>();
        while (merges.Count < vocabSize - fixedTokens)
        {
            (int, int) best = default;
            long bestCount = 1;
            foreach (var (p, c) in pairCount)
            {
                if (c < bestCount) continue;
                if (c > bestCount || Before(p, best)) { best = p; bestCount = c; }
            }
            if (bestCount < 2) break;
            var (left, right) = (symbols[best.Item1], symbols[best.Item2]);
            int merged = Symbol(left + right);
            merges.Add((left, right));
            foreach (int wi in where[best].ToList())
            {
                var w = words[wi];
                bool has = false;
                for (int i = 0; i + 1 < w.Count && !has; i++) has = w[i] == best.Item1 && w[i + 1] == best.Item2;
                if (!has) continue;
                Count(wi, -1);
                words[wi] = MergeAll(w, best.Item1, best.Item2, merged);
                Count(wi, +1);
            }
            where.Remove(best);
            foreach (var p in pairCount.Where(kv => kv.Value <= 0).Select(kv => kv.Key).ToList()) pairCount.Remove(p);
        }
        return new BpeTrainer(merges);

        bool Before((int, int) a, (int, int) b)
        {
            int c = string.CompareOrdinal(symbols[a.Item1], symbols[b.Item1]);
            return c < 0 || (c == 0 && string.CompareOrdinal(symbols[a.Item2], symbols[b.Item2]) < 0);
        }
    }

    private static List<int> MergeAll(List<int> w, int a, int b, int merged)
    {
        var result = new List<int>(w.Count);
        for (int i = 0; i < w.Count; i++)
        {
            if (i + 1 < w.Count && w[i] == a && w[i + 1] == b) { result.Add(merged); i++; }
            else result.Add(w[i]);
        }
        return result;
    }

    /// <summary>
    /// The ids of <paramref name="text"/> without special tokens, by this class's own BPE: within each piece, the pair
    /// of lowest merge rank is merged (every occurrence, left to right) until no learnt pair is left.
    /// </summary>
    public int[] EncodeContent(string text)
    {
        var ids = new List<int>();
        foreach (var piece in PreTokenize(text))
        {
            if (!wordCache.TryGetValue(piece, out var pieceIds))
            {
                var parts = piece.Select(c => c.ToString()).ToList();
                while (parts.Count > 1)
                {
                    int bestRank = int.MaxValue;
                    (string, string) bestPair = default;
                    for (int i = 0; i + 1 < parts.Count; i++)
                        if (ranks.TryGetValue((parts[i], parts[i + 1]), out int r) && r < bestRank) { bestRank = r; bestPair = (parts[i], parts[i + 1]); }
                    if (bestRank == int.MaxValue) break;
                    var next = new List<string>(parts.Count);
                    for (int i = 0; i < parts.Count; i++)
                    {
                        if (i + 1 < parts.Count && parts[i] == bestPair.Item1 && parts[i + 1] == bestPair.Item2) { next.Add(bestPair.Item1 + bestPair.Item2); i++; }
                        else next.Add(parts[i]);
                    }
                    parts = next;
                }
                pieceIds = parts.Select(p => Vocab[p]).ToArray();
                wordCache[piece] = pieceIds;
            }
            ids.AddRange(pieceIds);
        }
        return ids.ToArray();
    }

    /// <summary>BART's encoding: &lt;s&gt;, the content ids, &lt;/s&gt;.</summary>
    public int[] Encode(string text) => [Vocab["<s>"], .. EncodeContent(text), Vocab["</s>"]];

    /// <summary>
    /// Writes a Hugging Face tokenizer folder: vocab.json, merges.txt, tokenizer_config.json (BartTokenizer, so
    /// texts are wrapped in &lt;s&gt; … &lt;/s&gt;) and the tokenizer.json built from them. Each file is written atomically.
    /// </summary>
    public void Save(string folder, int modelMaxLength)
    {
        Directory.CreateDirectory(folder);
        var vocab = new JsonObject();
        foreach (var (t, id) in Vocab.OrderBy(kv => kv.Value)) vocab[t] = id;
        var json = new JsonSerializerOptions { WriteIndented = false };
        IO.AtomicFile.WriteAllText(Path.Combine(folder, TokenizerFiles.VocabJson), vocab.ToJsonString(json));
        IO.AtomicFile.WriteAllText(Path.Combine(folder, TokenizerFiles.MergesTxt),
            "#version: 0.2\n" + string.Concat(Merges.Select(m => $"{m.Left} {m.Right}\n")));
        var config = new JsonObject
        {
            ["tokenizer_class"] = "BartTokenizer", ["model_max_length"] = modelMaxLength, ["add_prefix_space"] = false,
            ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["unk_token"] = "<unk>", ["sep_token"] = "</s>",
            ["cls_token"] = "<s>", ["pad_token"] = "<pad>", ["mask_token"] = MaskToken,
        };
        var configPath = Path.Combine(folder, TokenizerFiles.ConfigJson);
        IO.AtomicFile.WriteAllText(configPath, config.ToJsonString(json));
        var definition = TokenizerFiles.ByteLevelBpe(Path.Combine(folder, TokenizerFiles.VocabJson), Path.Combine(folder, TokenizerFiles.MergesTxt), config, configPath);
        IO.AtomicFile.WriteAllText(Path.Combine(folder, TokenizerFiles.TokenizerJson), definition.ToJsonString(json));
    }
}
