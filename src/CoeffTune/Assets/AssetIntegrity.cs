using System.Security.Cryptography;
using System.Text;

namespace CoeffTune.Assets;

/// <summary>
/// Content hashes of cached assets, checked against pinned values. Re-hashing on every use would cost a
/// noticeable fraction of a second for a 90 MB model, so a stamp beside the content records what was
/// verified (size and modification time of every file); while the stamp still matches, the content has not
/// changed since it was verified, and any change to it makes the next use hash again.
/// </summary>
public static class AssetIntegrity
{
    public const string StampSuffix = ".verified";

    /// <summary>SHA-256 of one file, lower-case hex.</summary>
    public static string FileSha256(string path)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(f));
    }

    /// <summary>SHA-256 over a folder: each file's relative path (with '/') and content hash, in ordinal order of paths; stamps excluded.</summary>
    public static string TreeSha256(string dir)
    {
        var sb = new StringBuilder();
        foreach (var file in Files(dir))
            sb.Append(Path.GetRelativePath(dir, file).Replace('\\', '/')).Append('\0').Append(FileSha256(file)).Append('\n');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }

    /// <summary>
    /// Null when <paramref name="target"/> (a file or a folder) has the pinned hash, else what is wrong.
    /// </summary>
    public static string? Verify(string target, string pinnedSha256, string stampPath)
    {
        bool isFile = File.Exists(target);
        if (!isFile && !Directory.Exists(target)) return $"{target} is missing";
        var signature = Signature(target, isFile);
        if (File.Exists(stampPath) && File.ReadAllText(stampPath) == $"{pinnedSha256}\n{signature}") return null;
        var actual = isFile ? FileSha256(target) : TreeSha256(target);
        if (actual != pinnedSha256) return $"{target} has SHA-256 {actual}, expected {pinnedSha256}";
        IO.AtomicFile.WriteAllText(stampPath, $"{pinnedSha256}\n{signature}");
        return null;
    }

    private static IEnumerable<string> Files(string dir) =>
        Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
            .Where(f => !f.EndsWith(StampSuffix, StringComparison.Ordinal))
            .OrderBy(f => Path.GetRelativePath(dir, f).Replace('\\', '/'), StringComparer.Ordinal);

    private static string Signature(string target, bool isFile)
    {
        var files = isFile ? new[] { target } : Files(target).ToArray();
        var sb = new StringBuilder();
        foreach (var f in files)
        {
            var info = new FileInfo(f);
            sb.Append(isFile ? "" : Path.GetRelativePath(target, f)).Append(' ').Append(info.Length).Append(' ').Append(info.LastWriteTimeUtc.Ticks).Append('\n');
        }
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }
}
