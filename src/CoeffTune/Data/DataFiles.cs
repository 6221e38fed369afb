using System.IO.Compression;

namespace CoeffTune.Data;

/// <summary>Small file helpers shared by the readers.</summary>
internal static class DataFiles
{
    /// <summary>Opens a file, decompressing it when it starts with the gzip magic (whatever its extension).</summary>
    public static Stream OpenMaybeGzip(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        var fs = File.OpenRead(path);
        int b0 = fs.ReadByte(), b1 = fs.ReadByte();
        fs.Position = 0;
        if (b0 == 0x1f && b1 == 0x8b) return new GZipStream(fs, CompressionMode.Decompress);
        return fs;
    }

    /// <summary>The whole (possibly gzipped) file as bytes; names the file if the gzip data are broken.</summary>
    public static byte[] ReadAllBytes(string path)
    {
        using var s = OpenMaybeGzip(path);
        using var ms = new MemoryStream();
        try { s.CopyTo(ms); }
        catch (InvalidDataException e) { throw Bad(path, $"corrupt gzip data ({e.Message})"); }
        return ms.ToArray();
    }

    /// <summary>A text encoding by name: strict UTF-8 (invalid bytes throw) or Latin-1.</summary>
    public static System.Text.Encoding TextEncoding(string name) => name.Replace("_", "-").ToLowerInvariant() switch
    {
        "utf-8" or "utf8" => new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true),
        "latin-1" or "latin1" or "iso-8859-1" => System.Text.Encoding.Latin1,
        _ => throw new ArgumentException($"unknown text encoding '{name}' (utf-8, latin-1)"),
    };

    /// <summary>The error for bytes that are not valid UTF-8, naming the line of the first of them.</summary>
    public static InvalidDataException BadEncoding(string path)
    {
        var bytes = ReadAllBytes(path);
        var chars = new char[bytes.Length];
        System.Text.Unicode.Utf8.ToUtf16(bytes, chars, out int read, out _, replaceInvalidSequences: false);
        int line = 1 + bytes.AsSpan(0, read).Count((byte)'\n');
        return Bad(path, $"line {line} is not valid UTF-8; if the file is in Latin-1, give that encoding (latin-1)");
    }

    public static InvalidDataException Bad(string path, string what) => new($"{Path.GetFileName(path)}: {what}");

    /// <summary>Class names from string labels: numeric order when every label is an integer, ordinal otherwise.</summary>
    public static (int[] Labels, string[] Classes) Encode(IReadOnlyList<string> raw)
    {
        var distinct = raw.Distinct(StringComparer.Ordinal).ToList();
        bool numeric = distinct.All(s => long.TryParse(s, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out _));
        var classes = numeric
            ? distinct.OrderBy(s => long.Parse(s, System.Globalization.CultureInfo.InvariantCulture)).ToArray()
            : distinct.OrderBy(s => s, StringComparer.Ordinal).ToArray();
        var index = classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i, StringComparer.Ordinal);
        return (raw.Select(s => index[s]).ToArray(), classes);
    }
}
