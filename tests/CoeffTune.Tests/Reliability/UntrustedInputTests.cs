using System.Text;
using System.Text.Json.Nodes;
using CoeffTune.Adapters;
using CoeffTune.Assets;
using CoeffTune.Data;
using CoeffTune.IO;
using CoeffTune.Methods;
using CoeffTune.Methods.Lora;
using CoeffTune.Text;
using CoeffTune.Tests.Cli;
using SkiaSharp;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Reliability;

/// <summary>Files and values from outside are checked before they are trusted; each bad case is an error naming it.</summary>
public sealed class UntrustedInputTests : IDisposable
{
    private readonly TempDir temp = new();
    public void Dispose() => temp.Dispose();

    /// <summary>A safetensors file from a header written here by hand and a data section of <paramref name="dataBytes"/> bytes.</summary>
    private string Safetensors(string header, int dataBytes, ulong? lengthField = null)
    {
        var path = temp.File($"t{Guid.NewGuid():N}.safetensors");
        var h = Encoding.UTF8.GetBytes(header);
        using var f = File.Create(path);
        f.Write(BitConverter.GetBytes(lengthField ?? (ulong)h.Length));
        f.Write(h);
        f.Write(new byte[dataBytes]);
        return path;
    }

    [Theory]
    [InlineData("""{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}""", 8, null, null)]
    [InlineData("""{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}""", 8, 1_500_000_000UL, "header length field says 1,500,000,000 bytes")]
    [InlineData("""{"a": {"dtype": "F32", "shape": [1000000000, 1000000000], "data_offsets": [0, 8]}}""", 8, null, "needs 4,000,000,000,000,000,000 bytes")]
    [InlineData("""{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}""", 12, null, "overlaps")]
    [InlineData("""{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}""", 4, null, "truncated")]
    [InlineData("""{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}""", 8, null, "a gap of 4 bytes")]
    [InlineData("""{"a": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 8]}}""", 8, null, "dtype Q4")]
    public void A_safetensors_header_is_checked_against_the_file_before_anything_is_allocated(string header, int data, ulong? lengthField, string? error)
    {
        var path = Safetensors(header, data, lengthField);
        if (error is null)
        {
            SafetensorsFile.Validate(path);
            return;
        }
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(error, e.Message);
    }

    private string SavedAdapter()
    {
        var peft = PeftModel.Wrap(TinyModels.Bert(), "coeff+lora");
        var dir = Path.Combine(temp.Path, "adapter");
        AdapterFile.Save(peft, dir, "tiny", new[] { "a", "b", "c" });
        return dir;
    }

    [Fact]
    public void An_adapter_with_non_finite_weights_is_refused_naming_the_tensor()
    {
        using var scope = NewDisposeScope();
        var dir = SavedAdapter();
        var weights = Path.Combine(dir, AdapterFile.WeightsName);
        var tensors = TorchSharp.PyBridge.Safetensors.LoadStateDict(weights);
        var key = tensors.Keys.First(k => k.EndsWith("lora_A.weight"));
        tensors[key][0, 0] = float.NaN;
        TorchSharp.PyBridge.Safetensors.SaveStateDict(weights, tensors);
        var e = Assert.Throws<InvalidDataException>(() => AdapterFile.Load(TinyModels.Bert(), dir));
        Assert.Contains($"'{key}'", e.Message);
        Assert.Contains("NaN or infinite", e.Message);
    }

    [Theory]
    [InlineData("labels", "3", "'labels' is 3, expected an array of strings")]
    [InlineData("format", "7", "'format' is 7, expected a string")]
    [InlineData("format_version", "\"one\"", "'format_version' is \"one\", expected an integer")]
    public void A_config_value_of_the_wrong_type_names_the_file_and_key(string key, string json, string expected)
    {
        var dir = SavedAdapter();
        var path = Path.Combine(dir, AdapterFile.ConfigName);
        var o = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        o[key] = JsonNode.Parse(json);
        File.WriteAllText(path, o.ToJsonString());
        var e = Assert.Throws<InvalidDataException>(() => AdapterFile.ReadInfo(dir));
        Assert.Contains(path, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Control_and_bidi_characters_are_escaped_for_the_terminal()
    {
        Assert.Equal("\\u202espam\\u001b[31m ham\\n\\t\\u200b é 😀", TerminalText.Quote("\u202espam\u001b[31m ham\n\t\u200b é 😀"));
    }

    [Fact]
    public void A_lora_rank_above_the_layer_width_is_refused_before_allocating()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new LoraLayer(nn.Linear(32, 16), new LoraConfig(rank: 2_000_000_000)));
        Assert.Contains("LoRA rank 2000000000 is above the layer's smaller side (16 x 32)", e.Message);
    }

    private void WritePng(string path, int size = 16)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var bmp = new SKBitmap(size, size);
        for (int y = 0; y < size; y++) for (int x = 0; x < size; x++) bmp.SetPixel(x, y, new SKColor((byte)(x * 13), (byte)(y * 7), (byte)(x ^ y)));
        using var data = bmp.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
    }

    [Fact]
    public void A_truncated_png_is_an_error_naming_it_and_skip_bad_counts_it()
    {
        var root = Path.Combine(temp.Path, "images");
        foreach (var c in new[] { "cat", "dog" })
            for (int i = 0; i < 2; i++) WritePng(Path.Combine(root, c, $"{i}.png"));
        var cut = Path.Combine(root, "dog", "1.png");
        var bytes = File.ReadAllBytes(cut);
        File.WriteAllBytes(cut, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<InvalidDataException>(() => ImageFolderReader.Read(root, 8, 8, 1));
        Assert.Contains(Path.Combine("dog", "1.png"), e.Message);
        Assert.Contains("truncated or damaged", e.Message);
        var log = new StringWriter();
        var data = ImageFolderReader.Read(root, 8, 8, 1, skipBad: true, log: log);
        Assert.Equal(3, data.Count);
        Assert.Contains("skipped 1 of 4 image files", log.ToString());
    }

    [Fact]
    public void Invalid_utf8_is_an_error_naming_file_and_line_and_latin1_reads_it()
    {
        var path = temp.File("mail.csv");
        File.WriteAllBytes(path, [.. Encoding.ASCII.GetBytes("text,label\nhello,ham\nbuy now,sp"), 0xE9, .. Encoding.ASCII.GetBytes("m\nhi,ham\n")]);
        var e = Assert.Throws<InvalidDataException>(() => TextFileReader.Read(path));
        Assert.Contains("mail.csv", e.Message);
        Assert.Contains("line 3 is not valid UTF-8", e.Message);
        var latin = TextFileReader.Read(path, encoding: "latin-1");
        Assert.Equal(new[] { "ham", "spém" }, latin.Classes);
    }

    [Fact]
    public void A_one_class_dataset_is_refused_before_anything_is_written()
    {
        var data = temp.File("one.csv", "text,label\n" + string.Concat(Enumerable.Range(0, 20).Select(i => $"text {i},ham\n")));
        var run = Path.Combine(temp.Path, "run");
        var (code, _, err) = CliRunner.Run("train", "--task", data, "--out", run);
        Assert.Equal(1, code);
        Assert.Contains("has 1 class ('ham'); a classifier needs at least two", err);
        Assert.False(Directory.Exists(run), "a refused run leaves no folder behind");
    }

    [Fact]
    public void A_tree_hash_catches_a_damaged_cached_file()
    {
        var dir = Path.Combine(temp.Path, "asset");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "a.txt"), "alpha");
        File.WriteAllText(Path.Combine(dir, "b.txt"), "beta");
        var pinned = AssetIntegrity.TreeSha256(dir);
        var stamp = dir + AssetIntegrity.StampSuffix;
        Assert.Null(AssetIntegrity.Verify(dir, pinned, stamp));
        Assert.True(File.Exists(stamp));
        File.WriteAllText(Path.Combine(dir, "b.txt"), "betA!");
        var problem = AssetIntegrity.Verify(dir, pinned, stamp);
        Assert.NotNull(problem);
        Assert.Contains($"expected {pinned}", problem);
    }
}
