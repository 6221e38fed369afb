using CoeffTune.IO;

namespace CoeffTune.Tests.IO;

public sealed class AtomicFileTests : IDisposable
{
    private readonly TempDir temp = new();
    public void Dispose() => temp.Dispose();

    /// <summary>Every file under <paramref name="dir"/> by relative path, with its text.</summary>
    private static SortedDictionary<string, string> Contents(string dir) =>
        new(Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(dir, f).Replace('\\', '/'), File.ReadAllText), StringComparer.Ordinal);

    private string OldFolder()
    {
        var dir = Path.Combine(temp.Path, "adapter");
        temp.File("adapter/config.json", "old config");
        temp.File("adapter/weights.bin", "old weights");
        temp.File("adapter/sub/extra.txt", "only in the old folder");
        return dir;
    }

    [Fact]
    public void WriteDirectory_replaces_the_old_folder_whole()
    {
        var dir = OldFolder();
        string? filled = null;
        AtomicFile.WriteDirectory(dir, tmp =>
        {
            filled = tmp;
            // The folder to fill is fresh and empty, beside the target (so the final rename stays on one file system).
            Assert.Empty(Directory.EnumerateFileSystemEntries(tmp));
            Assert.Equal(temp.Path, Path.GetDirectoryName(tmp));
            File.WriteAllText(Path.Combine(tmp, "config.json"), "new config");
            File.WriteAllText(Path.Combine(tmp, "new.txt"), "only in the new folder");
        });
        // Exactly the new files: nothing of the old folder survives beside them.
        Assert.Equal(new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["config.json"] = "new config", ["new.txt"] = "only in the new folder",
        }, Contents(dir));
        Assert.False(Directory.Exists(filled));
        Assert.Equal(["adapter"], Directory.GetFileSystemEntries(temp.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void WriteDirectory_creates_a_folder_that_did_not_exist()
    {
        var dir = Path.Combine(temp.Path, "a", "b");
        AtomicFile.WriteDirectory(dir, tmp => File.WriteAllText(Path.Combine(tmp, "x.txt"), "x"));
        Assert.Equal(new SortedDictionary<string, string>(StringComparer.Ordinal) { ["x.txt"] = "x" }, Contents(dir));
        Assert.Equal(["b"], Directory.GetFileSystemEntries(Path.Combine(temp.Path, "a")).Select(Path.GetFileName));
    }

    [Fact]
    public void An_exception_in_fill_leaves_the_old_folder_intact_and_no_temporary_folder()
    {
        var dir = OldFolder();
        var before = Contents(dir);
        var e = Assert.Throws<IOException>(() => AtomicFile.WriteDirectory(dir, tmp =>
        {
            File.WriteAllText(Path.Combine(tmp, "config.json"), "half of a new config");
            Directory.CreateDirectory(Path.Combine(tmp, "sub"));
            throw new IOException("No space left on device");
        }));
        Assert.Equal("No space left on device", e.Message);
        Assert.Equal(before, Contents(dir));
        Assert.Equal(3, before.Count);
        // Nothing else beside it: no temporary folder, no old folder moved aside.
        Assert.Equal(["adapter"], Directory.GetFileSystemEntries(temp.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void Write_replaces_a_file_and_leaves_no_temporary_file()
    {
        var path = temp.File("split.json", "old");
        AtomicFile.WriteAllText(path, "new");
        Assert.Equal("new", File.ReadAllText(path));
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, tmp =>
        {
            File.WriteAllText(tmp, "half");
            throw new InvalidOperationException("writer failed");
        }));
        Assert.Equal("new", File.ReadAllText(path));
        Assert.Equal(["split.json"], Directory.GetFileSystemEntries(temp.Path).Select(Path.GetFileName));
    }
}
